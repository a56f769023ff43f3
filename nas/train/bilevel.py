"""Differentiable (DARTS-family) search on any space with a `DifferentiableSupernet`: DARTS
(1st/2nd order), PC-DARTS, GDAS, hardware-aware DNAS (FBNet's multiplicative and ProxylessNAS'
additive latency loss), SD-DARTS, RARTS and ROME (`nas.train.bilevel_rules`).

The training split is cut in two halves (seeded): the weights train on the first, the
architecture parameters on the second, one step each per batch pair (architecture first, as in
DARTS). The space family (`nas.train.bilevel_spaces`) sizes and builds the search network.
Artifacts in the run folder:

* `supernet/checkpoint.pt`: the shared loop's checkpoint (weights, architecture parameters,
  both optimizers, the method's own state, position, RNG); `resume=True` continues from it
  with identical batches;
* `supernet/metrics.jsonl`: step and epoch records (`skip`: the mean softmax weight of skip
  connections, to watch the alphas drift); `supernet/alphas.jsonl`: softmaxed alphas (and
  betas) per epoch;
* `arch.json` and `supernet/summary.json` (`nas.train.bilevel_summary`), plus the family's
  own files (DARTS: `genotype.json`, `genotype.png`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nas.artifacts import RunDir, append_jsonl, atomic_write_json
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits, Split, load_dataset
from nas.errors import ConfigError
from nas.supernet.differentiable import SKIP, DifferentiableSupernet
from nas.train.bilevel_config import BilevelConfig
from nas.train.bilevel_rules import make_rule
from nas.train.bilevel_spaces import search_family
from nas.train.config import DARTS_TRAINED, TrainConfig
from nas.train.darts_adapter import bilevel_config_from, train_values
from nas.train.darts_steps import Objective
from nas.train.distributed import DistContext
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.metrics import truncate_jsonl
from nas.train.trainer import LoopResult, Phase, RunTrainer, StepOutput
from search_spaces import SearchSpace

if TYPE_CHECKING:
    from nas.train.search_latency import ExpectedLatency

logger = logging.getLogger(__name__)


def build_search_network(config: BilevelConfig, space: SearchSpace) -> DifferentiableSupernet:
    """The search network of `space` for `config.method`, in the method's mode."""
    net = search_family(config.space).build(space, config)
    net.mode = config.mode
    return net


def _halves(split: Split, seed: int) -> tuple[Split, Split]:
    order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    parts = order[:half], order[half:]
    return tuple(Split(split.images[p], split.labels[p]) for p in parts)  # type: ignore[return-value]


class BilevelTrainer(RunTrainer):
    """A DARTS-family search: weights and architecture parameters, one step each per batch pair.

    Args:
        config: search options (`config.space` names the space).
        run: run folder (latency tables, `alphas.jsonl`, `arch.json`, `summary.json`).
        splits: dataset; the train split is halved for weights and alphas, val is reported.
        device: torch device.
        resume: the search continues from a checkpoint (keeps the latency table it started
            with).
    """

    kind = "bilevel"
    resume_keys = ("space", "space_options", "method", "epochs", "epoch_steps", "batch_size",
                   "seed", "lr", *DARTS_TRAINED)
    net: DifferentiableSupernet
    config: BilevelConfig

    def __init__(self, config: BilevelConfig, run: RunDir, splits: DatasetSplits,
                 device: torch.device, *, resume: bool = False) -> None:
        self.config, self.run, self.splits, self.device = config, run, splits, device
        self.family = search_family(config.space)
        self.space = self.family.space(config, splits)
        self.net = build_search_network(config, self.space).to(device)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=config.lr,
                                     momentum=config.momentum, weight_decay=config.weight_decay)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.resolved_arch_lr(),
                                      betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)
        self.rule = make_rule(self.net, self.w_opt, self.a_opt, config)
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
            family = search_family(config.space)
            source = family.default_latency_source(run, family.space(config, splits),
                                                   resume=resume)
            config = dataclasses.replace(config, latency_table=source)
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
    def _alphas(self) -> dict[str, torch.Tensor]:
        return {cell: self.net.alphas(cell) for cell in self.net.cell_types}

    def _init_latency(self, resume: bool) -> None:
        source = self.config.latency_table or "toy"
        table, keep = self.family.latency_table(source, self.space, self.run, resume=resume)
        self._table_to_keep = table if keep else None
        self.latency = self.family.expected_latency(self.space, table)
        with torch.no_grad():
            initial = float(self.latency(self._alphas()))
        self.target = self.config.target_latency or 0.7 * initial

    def objective(self) -> Objective:
        if self.latency is None:
            return F.cross_entropy
        from nas.train.search_latency import latency_loss

        config, latency = self.config, self.latency
        form = "multiplicative" if config.method == "fbnet" else "additive"
        weight = config.latency_weight or (1.0 if form == "multiplicative" else 0.1)

        def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return latency_loss(F.cross_entropy(logits, labels), latency(self._alphas()),
                                form=form, target=self.target, weight=weight,
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
        full = min(len(self.w_loader), len(self.a_loader))
        return min(full, self.config.epoch_steps or full)

    def space_spec(self) -> dict[str, Any]:
        return self.space.spec()

    def state_dict(self) -> dict[str, Any]:
        return {
            "state_dict": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "gumbel_state": self.net.gumbel_generator.get_state(),
            "target_latency": self.target,
            "method_state": self.rule.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["state_dict"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.net.gumbel_generator.set_state(state["gumbel_state"].cpu())
        self.target = float(state["target_latency"])
        self.rule.load_state_dict(state.get("method_state", {}))
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
        self.rule.set_lr(self._lr)
        self.net.tau = self.tau_at(epoch)

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        pairs = zip(self.w_loader.epoch(epoch, start_batch=start_batch),
                    self.a_loader.epoch(epoch, start_batch=start_batch), strict=False)
        return islice(pairs, self.steps_per_epoch - start_batch)

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        config, net = self.config, self.net
        w_batch, a_batch = batch
        arch = self.epoch >= config.arch_warmup_epochs
        loss, acc, extra = self.rule.step(w_batch, a_batch, arch=arch, lr=self._lr,
                                          objective=self.objective())
        self.steps_done, self.val_acc = step + 1, None
        metrics = {"loss": loss, "acc": acc, **extra, "skip": net.op_share(SKIP)}
        if config.mode != "softmax":
            metrics["tau"] = net.tau
        if self.latency is not None:
            with torch.no_grad():
                metrics["latency_ms"] = float(self.latency(self._alphas()))
        images = int(w_batch[0].shape[0] + a_batch[0].shape[0])
        return StepOutput(loss=loss, images=images, metrics=metrics, acc=acc)

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        self.val_acc = self.evaluate()
        logger.info("epoch %d: val_acc %.4f", epoch, self.val_acc)
        arch = self.net.derive()
        self._log_alphas(epoch + 1, arch)
        return {"val_acc": self.val_acc, "arch": self.net.arch_string(arch)}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> float:
        """Top-1 of the supernet on (the first `val_batches` batches of) the val split."""
        net, config = self.net, self.config
        loader = BatchLoader.for_splits(self.splits, "val", batch_size=config.eval_batch_size,
                                        device=self.device)
        correct = total = 0
        net.eval()
        with torch.no_grad():
            for index, (images, labels) in enumerate(loader.epoch(0)):
                if config.val_batches is not None and index >= config.val_batches:
                    break
                correct += int((net(images).argmax(1) == labels).sum())
                total += len(labels)
        net.train()
        return correct / max(1, total)

    def _log_alphas(self, epochs_done: int, arch: dict[str, Any]) -> None:
        net = self.net
        record: dict[str, Any] = {"epoch": epochs_done, "step": self.steps_done,
                                  "ops": list(net.op_names), "skip": round(net.op_share(SKIP), 5)}
        with torch.no_grad():
            for cell in net.cell_types:
                record[cell] = [[round(float(v), 5) for v in row] for row in net.op_weights(cell)]
                edges = net.edge_weights(cell)
                if edges is not None:
                    record[f"edges_{cell}"] = [round(float(v), 5) for v in edges]
                if net.topology_inputs is not None:
                    record[f"topology_{cell}"] = [round(float(v), 5) for v in net.betas(cell)]
        record["arch"] = net.arch_string(arch)
        append_jsonl(self.run.sub("supernet", "alphas.jsonl"), record)

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Derive the subnet; write `arch.json`, the family's files and `summary.json`."""
        from nas.train.bilevel_summary import search_summary

        self.summary = search_summary(self, result)
        val_acc = float(self.summary["val_acc"])
        keys = ("arch", "subnet", "genotype")
        return {"val": {"derived": {"top1": 100.0 * val_acc}},
                **{key: self.summary[key] for key in keys if key in self.summary}}


def run_bilevel_search(
    config: BilevelConfig, run: RunDir, *, splits: DatasetSplits, device: torch.device | str,
    on_step: Callable[[StepLog], None] | None = None, resume: bool = False,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Search a cell with `config.method`; returns a JSON-able summary.

    Args:
        config: search options.
        run: run folder (its manifest gets the space's spec).
        splits: dataset; the train split is halved for weights and alphas, val is reported.
        device: torch device.
        on_step: called after every step (progress bars).
        resume: continue from `supernet/checkpoint.pt`.
        max_steps: stop there this time (overrides `config.max_steps`, which is not a resume
            key: a search can be run in slices and resumed).
    """
    trainer = BilevelTrainer(config, run, splits, torch.device(device), resume=resume)
    options = LoopOptions.of(config)
    if max_steps is not None:
        options = dataclasses.replace(options, max_steps=max_steps)
    loop = TrainingLoop(trainer, run.path / "supernet", options=options, on_step=on_step,
                        label=f"run '{run.name}'")
    state = loop.load(resume=resume)
    run.update_manifest(space=trainer.space_spec())
    trainer.finish(loop.run(state))
    return trainer.summary


__all__ = ["BilevelConfig", "BilevelTrainer", "build_search_network", "run_bilevel_search"]
