"""Bilevel differentiable search on the DARTS space: DARTS (1st/2nd order), PC-DARTS, GDAS and
hardware-aware DNAS (FBNet's multiplicative and ProxylessNAS' additive latency loss).

The training split is cut in two halves (seeded): the weights train on the first, the
architecture parameters on the second, alternating one step each (architecture first, as in
DARTS). Artifacts in the run folder:

* `supernet/checkpoint.pt`: the shared loop's checkpoint (weights, alphas, both optimizers,
  position, RNG); `resume=True` continues from it with identical batches;
* `supernet/metrics.jsonl`: step and epoch records; `supernet/alphas.jsonl`: softmaxed alphas
  (and betas) per epoch, to watch for collapse such as skip connections taking over;
* `genotype.json` (the DARTS repository's form) and `genotype.png` (both cells drawn).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nas.artifacts import RunDir, append_jsonl, atomic_write_json
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits, Split, load_dataset
from nas.errors import ConfigError
from nas.train.bilevel_config import BilevelConfig
from nas.train.config import DARTS_TRAINED, TrainConfig
from nas.train.darts_adapter import bilevel_config_from, default_latency_source, train_values
from nas.train.darts_steps import (
    Objective,
    arch_step_first_order,
    arch_step_second_order,
    weight_step,
)
from nas.train.distributed import DistContext
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.metrics import truncate_jsonl
from nas.train.trainer import LoopResult, Phase, RunTrainer, StepOutput
from search_spaces.darts.genotypes import genotype_string
from search_spaces.darts.space import DartsSpace
from search_spaces.darts.supernet import DartsSupernet

if TYPE_CHECKING:
    from collections.abc import Callable

    from nas.train.darts_latency import ExpectedLatency

logger = logging.getLogger(__name__)


def build_search_network(config: BilevelConfig, space: DartsSpace) -> DartsSupernet:
    """The supernet for `config.method` (partial channels and edge norm for pc-darts)."""
    pc = config.method == "pc-darts"
    net = space.build_supernet(
        partial_channels=config.partial_channels if pc else 1, edge_norm=pc, seed=config.seed
    )
    net.mode = "gumbel" if config.method == "gdas" else "softmax"
    return net


def _halves(split: Split, seed: int) -> tuple[Split, Split]:
    order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    parts = order[:half], order[half:]
    return tuple(Split(split.images[p], split.labels[p]) for p in parts)  # type: ignore[return-value]


class BilevelTrainer(RunTrainer):
    """A DARTS-family search: weights and architecture parameters, alternating steps.

    Args:
        config: search options.
        run: run folder (latency tables, `alphas.jsonl`, `genotype.json`, `summary.json`).
        splits: dataset; the train split is halved for weights and alphas, val is reported.
        device: torch device.
        resume: the search continues from a checkpoint (keeps the latency table it started
            with).
    """

    kind = "bilevel"
    resume_keys = ("method", "epochs", "batch_size", "seed", "lr", *DARTS_TRAINED)
    net: DartsSupernet
    config: BilevelConfig

    def __init__(self, config: BilevelConfig, run: RunDir, splits: DatasetSplits,
                 device: torch.device, *, resume: bool = False) -> None:
        self.config, self.run, self.splits, self.device = config, run, splits, device
        self.space = DartsSpace(
            init_channels=config.init_channels, layers=config.layers,
            num_classes=splits.num_classes, in_channels=splits.channels,
            image_size=splits.image_size,
        )
        self.net = build_search_network(config, self.space).to(device)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=config.lr,
                                     momentum=config.momentum, weight_decay=config.weight_decay)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.resolved_arch_lr(),
                                      betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)
        weight_half, arch_half = _halves(splits.train, config.seed)
        self.w_loader, self.a_loader = (
            BatchLoader(half, batch_size=config.batch_size, device=device, mean=splits.mean,
                        std=splits.std, shuffle=True, seed=config.seed + offset, augment=True,
                        hflip=splits.hflip, drop_last=True)
            for offset, half in enumerate((weight_half, arch_half))
        )
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"batch_size {config.batch_size} is larger than half the training split "
                f"({len(weight_half.labels)} images); pass a smaller --batch-size"
            )
        self.epoch, self.steps_done, self._lr = 0, 0, self.lr_at(0)
        self.val_acc: float | None = None  # of the current weights, when already measured
        self.latency: ExpectedLatency | None = None
        self.target = 0.0
        self._table_to_keep: dict[str, float] | None = None
        self._run_options: dict[str, Any] = {}  # TrainConfig values recorded with the stage
        self.summary: dict[str, Any] = {}
        if config.hardware_aware:
            self._init_latency(resume)

    @classmethod
    def for_run(
        cls, cfg: TrainConfig, run: RunDir, *, device: torch.device, dist: DistContext,
        resume: bool, evaluate: bool,
    ) -> BilevelTrainer:
        config = bilevel_config_from(cfg)
        data_dir = None if cfg.data_dir is None else Path(cfg.data_dir)
        splits = load_dataset(cfg.dataset, data_dir=data_dir, image_size=cfg.image_size,
                              seed=cfg.seed)
        if config.hardware_aware and config.latency_table is None:
            space = DartsSpace(init_channels=config.init_channels, layers=config.layers,
                               num_classes=splits.num_classes, in_channels=splits.channels,
                               image_size=splits.image_size)
            config = dataclasses.replace(
                config, latency_table=default_latency_source(run, space, resume=resume)
            )
        trainer = cls(config, run, splits, device, resume=resume)
        trainer._run_options = {"space": cfg.space, "dataset": cfg.dataset,
                                "data_dir": cfg.data_dir, "image_size": cfg.image_size}
        return trainer

    @classmethod
    def check_distributed(cls, cfg: TrainConfig, dist: DistContext) -> None:
        if dist.enabled:
            raise ConfigError(
                f"--method {cfg.resolved_method}: a distributed DARTS search is not supported "
                "(its architecture steps, the second-order unrolled step, Gumbel draws and "
                "latency tables are not synchronised across processes, and a cell search fits "
                "one device); start it without torchrun")

    def stage_config(self) -> dict[str, Any]:
        return {**config_to_dict(self.config), **self._run_options}

    @classmethod
    def saved_options(cls, recorded: Mapping[str, Any]) -> dict[str, Any]:
        return train_values(recorded)

    # ------------------------------------------------------------------ objective
    def _init_latency(self, resume: bool) -> None:
        from nas.train.darts_latency import ExpectedLatency, search_latency_table

        source = self.config.latency_table or "toy"
        table, keep = search_latency_table(source, self.space, self.run, resume=resume)
        self._table_to_keep = table if keep else None
        self.latency = ExpectedLatency(self.space, table)
        with torch.no_grad():
            initial = float(self.latency(self.net.alphas_normal, self.net.alphas_reduce))
        self.target = self.config.target_latency or 0.7 * initial

    def objective(self) -> Objective:
        if self.latency is None:
            return F.cross_entropy
        from nas.train.darts_latency import latency_loss

        config, latency = self.config, self.latency
        form = "multiplicative" if config.method == "fbnet" else "additive"
        weight = config.latency_weight or (1.0 if form == "multiplicative" else 0.1)

        def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            expected = latency(self.net.alphas_normal, self.net.alphas_reduce)
            return latency_loss(F.cross_entropy(logits, labels), expected, form=form,
                                target=self.target, weight=weight,
                                exponent=config.latency_exponent)

        return loss

    # ------------------------------------------------------------------ schedules
    def lr_at(self, epoch: int) -> float:
        c = self.config
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * epoch / c.epochs))

    def tau_at(self, epoch: int) -> float:
        c = self.config
        span = max(1, c.epochs - 1)
        return c.tau_max - (c.tau_max - c.tau_min) * epoch / span

    def lr(self) -> float:
        return self._lr

    # ------------------------------------------------------------------ the loop's hooks
    @property
    def phases(self) -> Sequence[Phase]:
        return (Phase(self.config.method, self.config.epochs),)

    @property
    def steps_per_epoch(self) -> int:
        return min(len(self.w_loader), len(self.a_loader))

    def space_spec(self) -> dict[str, Any]:
        return self.space.spec()

    def state_dict(self) -> dict[str, Any]:
        return {
            "state_dict": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "gumbel_state": self.net.gumbel_generator.get_state(),
            "target_latency": self.target,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["state_dict"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.net.gumbel_generator.set_state(state["gumbel_state"].cpu())
        self.target = float(state["target_latency"])
        self.steps_done = int(state["position"].step)

    def start(self, *, resumed_at: int | None) -> None:
        alphas = self.run.sub("supernet", "alphas.jsonl")
        if resumed_at is not None:
            truncate_jsonl(alphas, resumed_at)
            return
        alphas.unlink(missing_ok=True)
        if self._table_to_keep is not None:
            # the profile may grow later; the run keeps the table it searched with
            atomic_write_json(self.run.sub("supernet", "latency_table.json"),
                              self._table_to_keep)

    def begin_epoch(self, epoch: int, *, start_batch: int) -> None:
        self.epoch, self._lr = epoch, self.lr_at(epoch)
        for group in self.w_opt.param_groups:
            group["lr"] = self._lr
        self.net.tau = self.tau_at(epoch)

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        pairs = zip(self.w_loader.epoch(epoch, start_batch=start_batch),
                    self.a_loader.epoch(epoch, start_batch=start_batch), strict=False)
        return islice(pairs, self.steps_per_epoch - start_batch)

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        config, net = self.config, self.net
        w_batch, a_batch = batch
        arch_loss = float("nan")
        if self.epoch >= config.arch_warmup_epochs:
            if config.method == "darts-2nd":
                arch_loss = arch_step_second_order(net, self.a_opt, self.w_opt, w_batch,
                                                   a_batch, self.objective(), lr=self._lr)
            else:
                arch_loss = arch_step_first_order(net, self.a_opt, a_batch[0], a_batch[1],
                                                  self.objective())
        loss, acc = weight_step(net, self.w_opt, w_batch[0], w_batch[1],
                                grad_clip=config.grad_clip)
        self.steps_done, self.val_acc = step + 1, None
        metrics = {"loss": loss, "acc": acc, "arch_loss": arch_loss}
        if config.method == "gdas":
            metrics["tau"] = net.tau
        if self.latency is not None:
            with torch.no_grad():
                metrics["latency_ms"] = float(self.latency(net.alphas_normal, net.alphas_reduce))
        images = int(w_batch[0].shape[0] + a_batch[0].shape[0])
        return StepOutput(loss=loss, images=images, metrics=metrics, acc=acc)

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        self.val_acc = self.evaluate()
        logger.info("epoch %d: val_acc %.4f", epoch, self.val_acc)
        self._log_alphas(epoch + 1)
        return {"val_acc": self.val_acc, "genotype": self.net.derive()}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> float:
        """Top-1 of the supernet on (the first `val_batches` batches of) the val split."""
        net, config = self.net, self.config
        loader = BatchLoader.for_splits(self.splits, "val", batch_size=config.eval_batch_size,
                                        device=self.device)
        correct = total = 0
        mode = net.mode
        net.eval()
        with torch.no_grad():
            for index, (images, labels) in enumerate(loader.epoch(0)):
                if config.val_batches is not None and index >= config.val_batches:
                    break
                correct += int((net(images).argmax(1) == labels).sum())
                total += len(labels)
        net.train()
        net.mode = mode
        return correct / max(1, total)

    def _log_alphas(self, epochs_done: int) -> None:
        net = self.net
        record: dict[str, Any] = {"epoch": epochs_done, "step": self.steps_done}
        with torch.no_grad():
            for cell in ("normal", "reduce"):
                record[cell] = [[round(float(v), 5) for v in row] for row in net.op_weights(cell)]
                edges = net.edge_weights(cell)
                if edges is not None:
                    record[f"edges_{cell}"] = [round(float(v), 5) for v in edges]
        record["genotype"] = net.derive()
        append_jsonl(self.run.sub("supernet", "alphas.jsonl"), record)

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Derive the genotype; write `genotype.json`/`.png` and `supernet/summary.json`."""
        self.summary = search_summary(self, result)
        val_acc = float(self.summary["val_acc"])
        return {"val": {"derived": {"top1": 100.0 * val_acc}},
                "genotype": self.summary["genotype"]}


def derive_genotype(trainer: BilevelTrainer) -> dict[str, Any]:
    """The genotype by `config.select`: largest alphas, or DARTS-PT's perturbation."""
    config, net = trainer.config, trainer.net
    if config.select == "perturbation":
        from nas.train.darts_select import perturbation_genotype

        genotype = perturbation_genotype(net, trainer.splits, device=trainer.device,
                                         batches=config.pt_batches,
                                         batch_size=config.eval_batch_size)
    else:
        genotype = net.derive()
    net.mode = "gumbel" if config.method == "gdas" else "softmax"
    return trainer.space.normalize(genotype)


def search_summary(trainer: BilevelTrainer, result: LoopResult) -> dict[str, Any]:
    """Write `genotype.json`, `genotype.png` and `supernet/summary.json`; return the summary."""
    config, net, run, space = trainer.config, trainer.net, trainer.run, trainer.space
    genotype = derive_genotype(trainer)
    eval_space = DartsSpace(init_channels=36, layers=20, num_classes=space.num_classes,
                            in_channels=space.in_channels, image_size=space.image_size)
    summary: dict[str, Any] = {
        "method": config.method, "select": config.select, "completed": result.completed,
        "epochs_done": result.epochs_done, "steps": result.steps,
        "val_acc": trainer.val_acc if trainer.val_acc is not None else trainer.evaluate(),
        "genotype": genotype, "genotype_string": genotype_string(genotype),
        "eval_network_36x20": eval_space.complexity(genotype),
        "supernet": {"init_channels": config.init_channels, "layers": config.layers,
                     "params": sum(p.numel() for p in net.weight_parameters())},
    }
    if trainer.latency is not None:
        summary["target_latency_ms"] = trainer.target
        summary["genotype_latency_ms"] = trainer.latency.of_genotype(genotype)
    atomic_write_json(run.sub("genotype.json"), genotype)
    try:
        from search_spaces.darts.plot import plot_genotype

        plot_genotype(genotype, run.sub("genotype.png"))
    except ImportError as exc:  # matplotlib is a dependency; keep the search result anyway
        logger.warning("genotype drawing skipped: %s", exc)
    summary["config"] = dataclasses.asdict(config)
    atomic_write_json(run.sub("supernet", "summary.json"), summary)
    return summary


def run_bilevel_search(
    config: BilevelConfig, run: RunDir, *, splits: DatasetSplits, device: torch.device | str,
    on_step: Callable[[StepLog], None] | None = None, resume: bool = False,
) -> dict[str, Any]:
    """Search a genotype with `config.method`; returns a JSON-able summary.

    Args:
        config: search options.
        run: run folder (its manifest gets the space's spec).
        splits: dataset; the train split is halved for weights and alphas, val is reported.
        device: torch device.
        on_step: called after every step (progress bars).
        resume: continue from `supernet/checkpoint.pt`.
    """
    trainer = BilevelTrainer(config, run, splits, torch.device(device), resume=resume)
    loop = TrainingLoop(trainer, run.path / "supernet", options=LoopOptions.of(config),
                        on_step=on_step, label=f"run '{run.name}'")
    state = loop.load(resume=resume)
    run.update_manifest(space=trainer.space_spec())
    trainer.finish(loop.run(state))
    return trainer.summary


__all__ = ["BilevelConfig", "BilevelTrainer", "build_search_network", "run_bilevel_search"]
