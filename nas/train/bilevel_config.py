"""Options of a DARTS-family (bilevel) search: `BilevelConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from nas.config import check_finite
from nas.errors import ConfigError
from nas.train.checkpoint import DEFAULT_CHECKPOINT_MINUTES
from nas.train.config import SELECTIONS
from nas.train.registry import BILEVEL_METHODS
from search_spaces import parse_space_options


@dataclass(frozen=True)
class BilevelConfig:
    """Options of a DARTS-family search (defaults: DARTS' CIFAR recipe, short)."""

    method: str = "darts"
    space: str = "darts"  # a registered space whose family has a differentiable supernet
    epochs: int = 10
    batch_size: int = 32  # per half: a step sees batch_size weight + batch_size arch images
    # steps of one epoch (None: a pass over each half); shorter epochs give the per-epoch
    # schedules (lr, temperature, logged alphas) a finer grain on a budget of steps
    epoch_steps: int | None = None
    # the search network's size; None: the space's default
    init_channels: int | None = None  # darts: channels of the first cells (16); nb201: C (16)
    layers: int | None = None  # darts: cells (8)
    # more constructor arguments of the space, "KEY=VALUE" (`--space-option`; nb201's
    # cells_per_stage=2 for a smaller search network)
    space_options: tuple[str, ...] = ()
    lr: float = 0.025  # weight SGD, cosine-annealed per epoch to lr_min
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None  # Adam; None: 3e-4 (6e-4 for pc-darts, as in the papers)
    arch_weight_decay: float = 1e-3
    arch_warmup_epochs: int = 0  # epochs of weight-only training first (PC-DARTS uses 15/50)
    partial_channels: int = 4  # K of pc-darts (ignored by the other methods)
    tau_max: float = 10.0  # gdas/rome temperature, annealed linearly to tau_min
    tau_min: float = 0.1
    sd_teachers: int = 2  # sd-darts: the supernet's last iterates voting as the teacher
    sd_weight: float = 1.0  # sd-darts: weight of the distillation term
    sd_temperature: float = 1.0  # sd-darts: softmax temperature of teacher and student
    rarts_coupling: float = 1.0  # rarts: beta of beta/2 ||w - y||^2 (main and auxiliary net)
    rome_samples: int = 4  # rome: subnets sampled per step, gradients accumulated
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
    # also checkpoint when this long passed since the last
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES
    log_every: int = 10  # steps per metrics line
    eval_batch_size: int = 128
    val_batches: int | None = 4  # batches of the val split per epoch-end evaluation

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        object.__setattr__(self, "space_options", tuple(str(o) for o in self.space_options))
        parse_space_options(self.space_options)  # malformed options fail here, not mid-run
        if self.method not in BILEVEL_METHODS:
            raise ConfigError(f"method: expected one of {', '.join(BILEVEL_METHODS)}, got "
                              f"'{self.method}'")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select: expected argmax or perturbation, got '{self.select}'")
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "pt_batches",
                    "sd_teachers", "rome_samples"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        for key in ("epoch_steps", "init_channels", "layers"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.rarts_coupling < 0 or self.sd_weight < 0 or self.sd_temperature <= 0:
            raise ConfigError("expected rarts_coupling >= 0, sd_weight >= 0 and "
                              "sd_temperature > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: expected a positive integer, got {self.max_steps}")
        if self.lr <= 0 or self.tau_min <= 0 or self.tau_max < self.tau_min:
            raise ConfigError("expected lr > 0 and 0 < tau_min <= tau_max")

    @property
    def hardware_aware(self) -> bool:
        return self.method in ("fbnet", "proxyless")

    @property
    def mode(self) -> str:
        """The supernet's forward mode while searching (`nas.supernet.differentiable`)."""
        return {"gdas": "gumbel", "rome": "rome"}.get(self.method, "softmax")

    def resolved_arch_lr(self) -> float:
        if self.arch_lr is not None:
            return self.arch_lr
        return 6e-4 if self.method == "pc-darts" else 3e-4
