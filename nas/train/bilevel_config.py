"""Options of a DARTS-family (bilevel) search: `BilevelConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import ConfigError
from nas.train.config import SELECTIONS
from nas.train.registry import BILEVEL_METHODS


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
    checkpoint_minutes: float = 2.0  # also checkpoint when this long passed since the last
    log_every: int = 10  # steps per metrics line
    eval_batch_size: int = 128
    val_batches: int | None = 4  # batches of the val split per epoch-end evaluation

    def __post_init__(self) -> None:
        if self.method not in BILEVEL_METHODS:
            raise ConfigError(f"method: expected one of {', '.join(BILEVEL_METHODS)}, got "
                              f"'{self.method}'")
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
