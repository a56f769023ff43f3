"""Training options: `TrainConfig` (every option of `nas train-supernet`) and `PhaseConfig`.

Both are frozen dataclasses so a resolved config can be hashed, compared on `--resume` and
written to the run folder. Values from config files arrive as lists and dicts; `__post_init__`
turns them into tuples and `PhaseConfig`s so file, flag and Python inputs compare equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.config import check_finite, differing_keys
from nas.errors import ConfigError
from nas.train.checkpoint import DEFAULT_CHECKPOINT_MINUTES
from nas.train.registry import BILEVEL_METHODS, TRAINERS, family_of
from search_spaces import parse_space_options

# the run stage (`RunDir.begin_stage`) a `nas train-supernet` run records these options under
STAGE = "train-supernet"
# `method`'s default; a space whose family has no sandwich method runs its family's default
DEFAULT_METHOD = "sandwich"
# methods that train every choice from the first step, in one phase (no progressive shrinking)
SINGLE_PHASE_METHODS = ("sandwich", "spos")
SAMPLERS = ("uniform", "complexity", "pada")
AMP_MODES = ("none", "bf16", "fp16")
SELECTIONS = ("argmax", "perturbation")
# options of DARTS-family searches only, and those that only one kind of method uses
# (the network's size otherwise comes from --space-option, e.g. nb201's cells_per_stage=2)
DARTS_OPTIONS = ("init_channels", "layers", "partial_channels", "tau_max", "tau_min", "arch_lr",
                 "arch_warmup_epochs", "select", "latency_table", "target_latency",
                 "latency_weight", "sd_teachers", "sd_weight", "sd_temperature",
                 "rarts_coupling", "rome_samples")
# those that change what is trained (all but the final selection rule): checked on --resume
DARTS_TRAINED = tuple(key for key in DARTS_OPTIONS if key != "select")
METHOD_OPTIONS = {
    "partial_channels": ("pc-darts",),
    "tau_max": ("gdas", "rome"),
    "tau_min": ("gdas", "rome"),
    "latency_table": ("fbnet", "proxyless"),
    "target_latency": ("fbnet", "proxyless"),
    "latency_weight": ("fbnet", "proxyless"),
    "sd_teachers": ("sd-darts",),
    "sd_weight": ("sd-darts",),
    "sd_temperature": ("sd-darts",),
    "rarts_coupling": ("rarts",),
    "rome_samples": ("rome",),
}
# network options of one space family's search network
FAMILY_OPTIONS = {"layers": ("darts",)}
# Arch keys whose unlocking shrinks channels: the supernet re-sorts channels before such a phase.
CHANNEL_KEYS = ("expand_ratio", "width", "width_mult")


@dataclass(frozen=True)
class PhaseConfig:
    """One progressive-shrinking phase.

    Attributes:
        name: shown in logs and metrics ("full", "kernel", "depth", "expand").
        epochs: epochs of this phase.
        unlock: arch keys sampled in this phase; every other key stays at the largest value.
        lr: learning rate of this phase (None: the run's `lr`). OFA uses lower rates for
            later phases because they fine-tune an already trained network.
    """

    name: str
    epochs: int
    unlock: tuple[str, ...] = ()
    lr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "unlock", tuple(str(key) for key in self.unlock))
        if self.epochs < 1:
            raise ConfigError(f"phase '{self.name}': expected epochs >= 1, got {self.epochs}")

    @property
    def shrinks_channels(self) -> bool:
        return any(key in CHANNEL_KEYS for key in self.unlock)


def default_phases(epochs: int, lr: float) -> tuple[PhaseConfig, ...]:
    """OFA's schedule, compressed: full network, then elastic kernel, depth, expand.

    The full network gets a double share of the epochs since every later phase distils from it.
    """
    unit = max(1, epochs // 5)
    return (
        PhaseConfig("full", max(1, epochs - 3 * unit), ()),
        PhaseConfig("kernel", unit, ("kernel_size", "resolution"), lr * 0.3),
        PhaseConfig("depth", unit, ("kernel_size", "resolution", "depth"), lr * 0.3),
        PhaseConfig(
            "expand", unit, ("kernel_size", "resolution", "depth", *CHANNEL_KEYS), lr * 0.3
        ),
    )


def _to_phase(obj: Any) -> PhaseConfig:
    if isinstance(obj, PhaseConfig):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(f"phases: expected a mapping per phase, got {type(obj).__name__}")
    valid = {f.name for f in dataclasses.fields(PhaseConfig)}
    unknown = set(obj) - valid
    if unknown:
        raise ConfigError(f"phases: unknown key(s) {sorted(unknown)} (valid: {sorted(valid)})")
    try:
        return PhaseConfig(**obj)
    except TypeError as exc:
        raise ConfigError(f"phases: {exc}") from None


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(" ", ",").split(",") if part]
    if not isinstance(value, Sequence) or not value:
        raise ConfigError(f"{name}: expected a non-empty list of integers, got {value!r}")
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected integers like 24,28,32, got {value!r}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Every option of `nas train-supernet` (defaults train digits in minutes on a CPU)."""

    space: str = "ofa-mbv3"
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 32  # images are stored at this size; 32 selects the small-input stem
    resolutions: tuple[int, ...] = (24, 28, 32)  # elastic resolution, resized on device
    width_mult: float | None = None  # None: the space's default
    # more constructor arguments of the space, "KEY=VALUE" (e.g. nb201's channels=8 or
    # cells_per_stage=2 to train a smaller supernet on a CPU budget)
    space_options: tuple[str, ...] = ()
    # ofa-mbv3's small-input stem keeps 32 px maps 4x larger: ~12x the MACs of OFA's strides
    # at 32 px (CIFAR-grade accuracy, but far too slow for a minutes-long CPU run on digits).
    # None lets the space decide (small strides up to 64 px).
    small_input: bool | None = False
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.1  # peak lr at batch 64; OFA/BigNAS scale it linearly with the batch
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-5  # not applied to batch-norm weights and biases
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    grad_clip: float | None = 5.0  # sandwich sums 4 subnets' gradients; clipping tames spikes
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None  # stop early (quick runs); the lr schedule ignores it
    method: str = DEFAULT_METHOD  # see `nas.train.registry` for each family's methods
    sampler: str = "uniform"
    num_random: int = 2  # random subnets per step, besides the largest and the smallest
    distill_weight: float = 1.0  # weight of the KD term from the largest subnet / teacher
    complexity_bins: int = 8
    # few-shot NAS (Hu et al. 2022): after `few_shot_warmup` epochs (None: half the epochs)
    # split the supernet into this many sub-supernets on the decision whose candidates'
    # gradients disagree most, measured on `few_shot_batches` batches (None: 10). None: one-shot.
    few_shot: int | None = None
    few_shot_warmup: int | None = None
    few_shot_batches: int | None = None
    phases: tuple[PhaseConfig, ...] = field(default_factory=tuple)  # ps only; () = defaults
    checkpoint_every: int = 200  # steps
    # also checkpoint when this long passed since the last
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES
    log_every: int = 10  # steps per metrics.jsonl line
    amp: str = "none"
    channels_last: bool = False
    bn_calibration_batches: int = 10
    eval_batch_size: int = 256
    # DARTS-family search only (`--space darts`, or nb201 with a DARTS-family method); None:
    # the method's default (see nas.train.bilevel_config.BilevelConfig). Giving one to
    # once-for-all training is an error.
    init_channels: int | None = None  # channels of the first cells (darts 16; nb201 C, 16)
    layers: int | None = None  # darts: cells (8)
    partial_channels: int | None = None  # pc-darts: K, 1/K of the channels are mixed
    tau_max: float | None = None  # gdas: temperature at the first epoch
    tau_min: float | None = None  # gdas: temperature at the last epoch
    arch_lr: float | None = None  # Adam lr of the alphas
    arch_warmup_epochs: int | None = None  # weight-only epochs before the alphas train
    select: str | None = None  # argmax or perturbation (DARTS-PT)
    latency_table: str | None = None  # fbnet/proxyless: FILE, toy, measure, profile[:DEVICE]
    target_latency: float | None = None  # fbnet/proxyless: ms of the cells
    latency_weight: float | None = None  # fbnet alpha / proxyless lambda
    sd_teachers: int | None = None  # sd-darts: earlier iterates voting as the teacher (2)
    sd_weight: float | None = None  # sd-darts: weight of the distillation term (1.0)
    sd_temperature: float | None = None  # sd-darts: distillation temperature (1.0)
    rarts_coupling: float | None = None  # rarts: beta tying main and auxiliary weights (1.0)
    rome_samples: int | None = None  # rome: subnets per step, gradients accumulated (4)

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        object.__setattr__(self, "resolutions", _int_tuple(self.resolutions, "resolutions"))
        options = self.space_options
        if isinstance(options, str) or not isinstance(options, Sequence):
            raise ConfigError(f"space_options: expected a list of KEY=VALUE, got {options!r}")
        object.__setattr__(self, "space_options", tuple(str(option) for option in options))
        parse_space_options(self.space_options)  # malformed options fail here, not mid-run
        phases = self.phases if self.phases is not None else ()
        if not isinstance(phases, Sequence):
            raise ConfigError(f"phases: expected a list, got {type(phases).__name__}")
        object.__setattr__(self, "phases", tuple(_to_phase(p) for p in phases))
        self._check()

    @property
    def family(self) -> str:
        """The family of the space (`SearchSpace.family`): it picks the trainer."""
        return family_of(self.space)

    @property
    def elastic_resolution(self) -> bool:
        """Whether the space draws an input resolution per subnet (its constructor takes
        `resolutions`); other spaces ignore --resolutions (DARTS, nb201)."""
        import inspect

        from search_spaces import SPACES

        return "resolutions" in inspect.signature(SPACES.get(self.space).__init__).parameters

    @property
    def resolved_method(self) -> str:
        """The method this run trains with (the family's default for the default method)."""
        return TRAINERS.resolve(self.family, self.method, default=DEFAULT_METHOD)

    def _check(self) -> None:
        self._check_darts_options()
        TRAINERS.resolve(self.family, self.method, default=DEFAULT_METHOD)  # a valid method?
        choices = {"sampler": SAMPLERS, "amp": AMP_MODES}
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ConfigError(
                    f"{key}: expected one of {', '.join(valid)}, got '{getattr(self, key)}'"
                )
        positive = ("epochs", "batch_size", "checkpoint_every", "log_every", "image_size")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: expected a positive integer, got {self.max_steps}")
        if self.num_random < 0 or self.complexity_bins < 1:
            raise ConfigError("num_random must be >= 0 and complexity_bins >= 1")
        if self.lr <= 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")
        self._check_few_shot()
        if min(self.resolutions) < 8:
            raise ConfigError(f"resolutions: expected sizes >= 8 pixels, got {self.resolutions}")
        if self.elastic_resolution and max(self.resolutions) > self.image_size:
            # images are stored at --image-size: a larger resolution would only upsample them
            fix = (f"--resolutions with sizes from 8 to {self.image_size}, or a larger "
                   "--image-size" if self.image_size >= 8 else "--image-size 8 or more")
            raise ConfigError(
                f"resolutions: expected sizes up to --image-size {self.image_size}, got "
                f"{','.join(map(str, self.resolutions))}; pass {fix}")

    def _check_few_shot(self) -> None:
        extra = [key for key in ("few_shot_warmup", "few_shot_batches")
                 if getattr(self, key) is not None]
        if self.few_shot is None:
            if extra:
                raise ConfigError(f"--{extra[0].replace('_', '-')}: expected --few-shot K too")
            return
        if self.few_shot < 2:
            raise ConfigError(f"few_shot: expected K >= 2 sub-supernets, got {self.few_shot} "
                              "(leave it out for one-shot training)")
        if self.resolved_method not in SINGLE_PHASE_METHODS:
            raise ConfigError(f"--few-shot: expected --method {' or '.join(SINGLE_PHASE_METHODS)}"
                              f", got '{self.resolved_method}'")
        if not 1 <= self.split_epoch < self.epochs:
            raise ConfigError(f"few_shot_warmup: expected 1 to {self.epochs - 1} epochs (the "
                              f"split must leave epochs to train), got {self.split_epoch}")
        if self.few_shot_batches is not None and self.few_shot_batches < 1:
            raise ConfigError(f"few_shot_batches: expected >= 1, got {self.few_shot_batches}")

    @property
    def split_epoch(self) -> int:
        """The epoch at whose start a few-shot run splits its supernet."""
        return self.few_shot_warmup if self.few_shot_warmup is not None else self.epochs // 2

    def _check_darts_options(self) -> None:
        given = [key for key in DARTS_OPTIONS if getattr(self, key) is not None]
        if not given:
            return
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        method = self.resolved_method
        if method not in BILEVEL_METHODS:
            raise ConfigError(
                f"{flags}: DARTS-family search options, expected --space darts (or --space "
                f"nb201 with a DARTS-family --method), got space '{self.space}' with method "
                f"'{method}' (once-for-all training does not use them)")
        # an option the chosen method or space ignores would silently change nothing
        for key, methods in METHOD_OPTIONS.items():
            if getattr(self, key) is not None and method not in methods:
                raise ConfigError(f"--{key.replace('_', '-')}: only used by --method "
                                  f"{' or '.join(methods)}, got method '{method}'")
        for key, families in FAMILY_OPTIONS.items():
            if getattr(self, key) is not None and self.family not in families:
                raise ConfigError(f"--{key.replace('_', '-')}: only used with --space "
                                  f"{' or '.join(families)}, got space '{self.space}'")
        if self.init_channels is not None and self.width_mult is not None:
            raise ConfigError("expected --init-channels or --width-mult (16 x width), not both")
        if self.select is not None and self.select not in SELECTIONS:
            raise ConfigError(f"select: expected argmax or perturbation, got '{self.select}'")
        for key in ("arch_lr", "target_latency", "latency_weight", "sd_teachers",
                    "sd_temperature", "rome_samples"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError(f"{key}: expected a positive number, got {getattr(self, key)}")
        if self.arch_warmup_epochs is not None and self.arch_warmup_epochs < 0:
            raise ConfigError(
                f"arch_warmup_epochs: expected >= 0, got {self.arch_warmup_epochs}"
            )

    def resolved_phases(self) -> tuple[PhaseConfig, ...]:
        """The phases this run trains: one all-elastic phase for sandwich, else PS phases."""
        if self.method in SINGLE_PHASE_METHODS:
            return (PhaseConfig(self.method, self.epochs, ("*",), self.lr),)
        return self.phases or default_phases(self.epochs, self.lr)


# Options that change what is trained: `--resume` refuses a config that differs in these.
RESUME_KEYS = (
    "space", "dataset", "data_dir", "image_size", "resolutions", "width_mult", "small_input",
    "space_options",
    "method",
    "sampler", "num_random", "batch_size", "seed", "phases", "epochs",
    "few_shot", "few_shot_warmup", "few_shot_batches",
    # DARTS searches (None for once-for-all runs, so older checkpoints still compare equal)
    *DARTS_TRAINED,
)


def resume_mismatches(
    saved: Mapping[str, Any], current: Mapping[str, Any], keys: Sequence[str] = RESUME_KEYS
) -> list[str]:
    """Keys of `keys` whose values differ between two `config_to_dict` dicts."""
    return differing_keys(saved, current, keys)
