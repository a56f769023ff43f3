"""Bilevel differentiable search on the DARTS space: DARTS (1st/2nd order), PC-DARTS, GDAS and
hardware-aware DNAS (FBNet's multiplicative and ProxylessNAS' additive latency loss).

The training split is cut in two halves (seeded): the weights train on the first, the
architecture parameters on the second, alternating one step each (architecture first, as in
DARTS). Artifacts in the run folder:

* `supernet/ckpt.pt`: full state (weights, alphas, both optimizers, position, RNG), loaded with
  `weights_only=True`; `resume=True` continues from it with identical batches;
* `supernet/metrics.jsonl`: step and epoch records; `supernet/alphas.jsonl`: softmaxed alphas
  (and betas) per epoch, to watch for collapse such as skip connections taking over;
* `genotype.json` (the DARTS repository's form) and `genotype.png` (both cells drawn).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nas.artifacts import RunDir, append_jsonl, atomic_write_json, read_jsonl
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits, Split
from nas.errors import ConfigError
from nas.train.checkpoint import load_resumable_state
from nas.train.darts_steps import (
    Objective,
    arch_step_first_order,
    arch_step_second_order,
    weight_step,
)
from search_spaces.darts.genotypes import genotype_string
from search_spaces.darts.space import DartsSpace
from search_spaces.darts.supernet import DartsSupernet

if TYPE_CHECKING:
    from nas.train.darts_latency import ExpectedLatency

logger = logging.getLogger(__name__)

METHODS = ("darts", "darts-2nd", "pc-darts", "gdas", "fbnet", "proxyless")
SELECTIONS = ("argmax", "perturbation")
# Options that change what is trained: resuming with other values is refused.
RESUME_KEYS = ("method", "epochs", "batch_size", "init_channels", "layers", "seed",
               "partial_channels", "lr", "arch_lr", "arch_warmup_epochs", "tau_max", "tau_min",
               "latency_table", "target_latency", "latency_weight")


@dataclass(frozen=True)
class BilevelConfig:
    """Options of a DARTS-family search (defaults: DARTS' CIFAR recipe, short)."""

    method: str = "darts"
    epochs: int = 10
    batch_size: int = 32  # per half: a step sees batch_size weight + batch_size arch images
    init_channels: int = 16
    layers: int = 8
    lr: float = 0.025  # weight SGD, cosine-annealed per epoch to lr_min
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None  # Adam; None: 3e-4 (6e-4 for pc-darts, as in the papers)
    arch_weight_decay: float = 1e-3
    arch_warmup_epochs: int = 0  # epochs of weight-only training first (PC-DARTS uses 15/50)
    partial_channels: int = 4  # K of pc-darts (ignored by the other methods)
    tau_max: float = 10.0  # gdas temperature, annealed linearly to tau_min
    tau_min: float = 0.1
    # fbnet/proxyless: JSON/JSONL file, "toy", "measure" or "profile[:DEVICE]" (None: toy;
    # `nas train-supernet` picks profile:cpu when measured, else measure)
    latency_table: str | None = None
    target_latency: float | None = None  # ms of the cells; None: 70% of the initial expectation
    latency_weight: float | None = None  # None: 1.0 (fbnet alpha) / 0.1 (proxyless lambda)
    latency_exponent: float = 0.6  # fbnet beta
    select: str = "argmax"
    pt_batches: int = 2  # validation batches per perturbation measurement
    seed: int = 0
    max_steps: int | None = None  # stop early (quick runs); schedules ignore it
    checkpoint_every: int = 50  # steps
    log_every: int = 10  # steps per metrics line
    eval_batch_size: int = 128
    val_batches: int | None = 4  # batches of the val split per epoch-end evaluation

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method: expected one of {', '.join(METHODS)}, got '{self.method}'")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select: expected argmax or perturbation, got '{self.select}'")
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "pt_batches"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: expected a positive integer, got {self.max_steps}")
        if self.lr <= 0 or self.tau_min <= 0 or self.tau_max < self.tau_min:
            raise ConfigError("expected lr > 0 and 0 < tau_min <= tau_max")

    @property
    def hardware_aware(self) -> bool:
        return self.method in ("fbnet", "proxyless")

    def resolved_arch_lr(self) -> float:
        if self.arch_lr is not None:
            return self.arch_lr
        return 6e-4 if self.method == "pc-darts" else 3e-4


OnStep = Callable[[dict[str, Any]], None]


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


class _Search:
    """The mutable state of one search; `run_bilevel_search` drives it."""

    def __init__(self, config: BilevelConfig, run: RunDir, splits: DatasetSplits,
                 device: torch.device) -> None:
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
        self.steps_per_epoch = min(len(self.w_loader), len(self.a_loader))
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"batch_size {config.batch_size} is larger than half the training split "
                f"({len(weight_half.labels)} images); pass a smaller --batch-size"
            )
        self.epoch, self.batch, self.step = 0, 0, 0
        self.val_acc: float | None = None  # of the current weights, when already measured
        self.latency: ExpectedLatency | None = None
        self.target = 0.0
        if config.hardware_aware:
            self._init_latency()

    # ------------------------------------------------------------------ objective
    def _init_latency(self) -> None:
        from pathlib import Path

        from nas.train.darts_latency import (
            ExpectedLatency,
            load_latency_table,
            load_profile_table,
            measure_latency_table,
            profile_device,
            toy_latency_table,
        )

        source = self.config.latency_table or "toy"
        device = profile_device(source)
        saved = self.run.sub("supernet", "latency_table.json")
        if (source == "measure" or device is not None) and saved.is_file() \
                and self.run.sub("supernet", "ckpt.pt").is_file():
            # resuming (a fresh start over a checkpoint is refused later): keep the table the
            # search started with instead of timing the ops again or reading a grown profile
            table = load_latency_table(saved)
        elif source == "toy":
            table = toy_latency_table(self.space)
        elif source == "measure":
            table = measure_latency_table(self.space)
            atomic_write_json(self.run.sub("supernet", "latency_table.json"), table)
        elif device is not None:
            table = load_profile_table(self.run.root, self.space, device, run_path=self.run.path)
            # the profile may grow later; the run keeps the table it searched with
            atomic_write_json(self.run.sub("supernet", "latency_table.json"), table)
        else:
            table = load_latency_table(Path(source))
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

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "state_dict": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "gumbel_state": self.net.gumbel_generator.get_state(),
            "target_latency": self.target,
            "space": self.space.spec(),
            "config": config_to_dict(self.config),
        }

    def save(self) -> None:
        from nas.artifacts import atomic_save_with

        state = self.state()
        atomic_save_with(self.run.sub("supernet", "ckpt.pt"), lambda p: torch.save(state, p))

    def load(self) -> None:
        state = load_resumable_state(
            self.run.sub("supernet", "ckpt.pt"), map_location=self.device,
            config=config_to_dict(self.config), resume_keys=RESUME_KEYS,
        )
        self.net.load_state_dict(state["state_dict"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.net.gumbel_generator.set_state(state["gumbel_state"].cpu())
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.target = float(state["target_latency"])


def _trim_log(path: Any, step: int) -> None:
    """Drop records written after the checkpoint being resumed (they will be redone)."""
    from nas.artifacts import atomic_write_text

    kept = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= step]
    import json

    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def _evaluate(search: _Search) -> float:
    net, config = search.net, search.config
    loader = BatchLoader.for_splits(search.splits, "val", batch_size=config.eval_batch_size,
                                    device=search.device)
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


def _log_alphas(search: _Search) -> None:
    net = search.net
    record: dict[str, Any] = {"epoch": search.epoch, "step": search.step}
    with torch.no_grad():
        for cell in ("normal", "reduce"):
            record[cell] = [[round(float(v), 5) for v in row] for row in net.op_weights(cell)]
            edges = net.edge_weights(cell)
            if edges is not None:
                record[f"edges_{cell}"] = [round(float(v), 5) for v in edges]
    record["genotype"] = net.derive()
    append_jsonl(search.run.sub("supernet", "alphas.jsonl"), record)


def _train_step(search: _Search, w_batch: Any, a_batch: Any, lr: float) -> dict[str, float]:
    config, net = search.config, search.net
    arch_loss = float("nan")
    if search.epoch >= config.arch_warmup_epochs:
        if config.method == "darts-2nd":
            arch_loss = arch_step_second_order(net, search.a_opt, search.w_opt, w_batch, a_batch,
                                               search.objective(), lr=lr)
        else:
            arch_loss = arch_step_first_order(net, search.a_opt, a_batch[0], a_batch[1],
                                              search.objective())
    loss, acc = weight_step(net, search.w_opt, w_batch[0], w_batch[1],
                            grad_clip=config.grad_clip)
    return {"loss": loss, "acc": acc, "arch_loss": arch_loss}


def _run_epoch(search: _Search, on_step: OnStep | None, deadline_steps: int | None) -> bool:
    """Train from (epoch, batch) to the end of the epoch; False when max_steps stopped it."""
    config = search.config
    lr = search.lr_at(search.epoch)
    for group in search.w_opt.param_groups:
        group["lr"] = lr
    search.net.tau = search.tau_at(search.epoch)
    w_iter = search.w_loader.epoch(search.epoch, start_batch=search.batch)
    a_iter = search.a_loader.epoch(search.epoch, start_batch=search.batch)
    started = time.perf_counter()
    for w_batch, a_batch in zip(w_iter, a_iter, strict=False):
        if search.batch >= search.steps_per_epoch:
            break
        if deadline_steps is not None and search.step >= deadline_steps:
            return False
        record = _train_step(search, w_batch, a_batch, lr)
        search.batch += 1
        search.step += 1
        record.update(epoch=search.epoch, batch=search.batch, step=search.step, lr=lr,
                      seconds=time.perf_counter() - started,
                      total_steps=search.steps_per_epoch * config.epochs)
        if config.method == "gdas":
            record["tau"] = search.net.tau
        if search.latency is not None:
            with torch.no_grad():
                record["latency_ms"] = float(search.latency(search.net.alphas_normal,
                                                            search.net.alphas_reduce))
        if search.step % config.log_every == 0:
            append_jsonl(search.run.sub("supernet", "metrics.jsonl"), record)
        if on_step is not None:
            on_step(record)
        if search.step % config.checkpoint_every == 0:
            search.save()
    return True


def run_bilevel_search(
    config: BilevelConfig, run: RunDir, *, splits: DatasetSplits, device: torch.device | str,
    on_step: OnStep | None = None, resume: bool = False,
) -> dict[str, Any]:
    """Search a genotype with `config.method`; returns a JSON-able summary.

    Args:
        config: search options.
        run: run folder (its manifest gets the space's spec).
        splits: dataset; the train split is halved for weights and alphas, val is reported.
        device: torch device.
        on_step: called after every step with the step's record (progress bars).
        resume: continue from `supernet/ckpt.pt`.
    """
    search = _Search(config, run, splits, torch.device(device))
    metrics, alphas = run.sub("supernet", "metrics.jsonl"), run.sub("supernet", "alphas.jsonl")
    if resume:
        search.load()
        _trim_log(metrics, search.step)
        _trim_log(alphas, search.step)
    else:
        if run.sub("supernet", "ckpt.pt").is_file():
            raise ConfigError(
                f"run '{run.name}' already has a DARTS search checkpoint; pass --resume to "
                "continue it, or pick another --run"
            )
        metrics.unlink(missing_ok=True)
        alphas.unlink(missing_ok=True)
    run.update_manifest(space=search.space.spec())
    completed = True
    while search.epoch < config.epochs:
        completed = _run_epoch(search, on_step, config.max_steps)
        search.val_acc = None
        if not completed:
            break
        val_acc = search.val_acc = _evaluate(search)
        append_jsonl(metrics, {"epoch": search.epoch, "step": search.step, "val_acc": val_acc,
                               "genotype": search.net.derive()})
        logger.info("epoch %d: val_acc %.4f", search.epoch, val_acc)
        search.epoch, search.batch = search.epoch + 1, 0
        _log_alphas(search)
        search.save()
    search.save()
    return _finish(search, completed)


def _finish(search: _Search, completed: bool) -> dict[str, Any]:
    config, net, run = search.config, search.net, search.run
    if config.select == "perturbation":
        from nas.train.darts_select import perturbation_genotype

        genotype = perturbation_genotype(net, search.splits, device=search.device,
                                         batches=config.pt_batches,
                                         batch_size=config.eval_batch_size)
    else:
        genotype = net.derive()
    genotype = search.space.normalize(genotype)
    net.mode = "gumbel" if config.method == "gdas" else "softmax"
    eval_space = DartsSpace(init_channels=36, layers=20, num_classes=search.space.num_classes,
                            in_channels=search.space.in_channels,
                            image_size=search.space.image_size)
    summary: dict[str, Any] = {
        "method": config.method, "select": config.select, "completed": completed,
        "epochs_done": search.epoch, "steps": search.step,
        "val_acc": search.val_acc if search.val_acc is not None else _evaluate(search),
        "genotype": genotype, "genotype_string": genotype_string(genotype),
        "eval_network_36x20": eval_space.complexity(genotype),
        "supernet": {"init_channels": config.init_channels, "layers": config.layers,
                     "params": sum(p.numel() for p in net.weight_parameters())},
    }
    if search.latency is not None:
        summary["target_latency_ms"] = search.target
        summary["genotype_latency_ms"] = search.latency.of_genotype(genotype)
    atomic_write_json(run.sub("genotype.json"), genotype)
    try:
        from search_spaces.darts.plot import plot_genotype

        plot_genotype(genotype, run.sub("genotype.png"))
    except ImportError as exc:  # matplotlib is a dependency; keep the search result anyway
        logger.warning("genotype drawing skipped: %s", exc)
    summary["config"] = dataclasses.asdict(config)
    atomic_write_json(run.sub("supernet", "summary.json"), summary)
    return summary


def train_darts(cfg: Any, run: RunDir, *, resume: bool, device: torch.device) -> Any:
    """Entry point of `nas train-supernet --space darts` (see `nas.train.darts_adapter`)."""
    from nas.train.darts_adapter import train_darts as adapter

    return adapter(cfg, run, resume=resume, device=device)
