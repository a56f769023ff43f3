"""The `Trainer` interface: what one kind of training supplies to the shared `TrainingLoop`.

The loop (nas/train/loop.py) owns the position, checkpoints, resume, metrics and stopping;
a trainer owns its networks, optimizers, data and what one step does.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from nas.artifacts import RunDir
    from nas.train.config import TrainConfig
    from nas.train.distributed import DistContext


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs trained alike (progressive shrinking has several, most trainers one)."""

    name: str
    epochs: int


@dataclass(frozen=True)
class Ratio:
    """A metric logged as sum(total) / sum(count) over a window, e.g. (correct, seen)."""

    total: float
    count: float


@dataclass(frozen=True)
class StepOutput:
    """What one training step reports.

    Attributes:
        loss: the step's loss (progress display).
        images: training images of the step (throughput).
        metrics: logged to metrics.jsonl as means over the log window: a float is averaged
            over steps, a `Ratio` as the ratio of its sums.
        acc: training accuracy shown by the progress display (the largest subnet's for
            once-for-all training).
        acc_smallest: the smallest subnet's (sandwich rule only).
    """

    loss: float
    images: int
    metrics: Mapping[str, float | Ratio] = field(default_factory=dict)
    acc: float | None = None
    acc_smallest: float | None = None


@dataclass(frozen=True)
class LoopResult:
    """How far training got and how fast it went."""

    steps: int
    completed: bool  # False when stopped by max_steps
    seconds: float
    images: int  # distinct training images seen in this process's session (all ranks)
    epochs_done: int = 0  # whole epochs trained so far, over all phases
    resumed_from: int | None = None  # the checkpoint's step when the run resumed

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


class Trainer(abc.ABC):
    """One kind of training (once-for-all, bilevel, stand-alone, fine-tuning).

    Lifecycle, as driven by `TrainingLoop.run()`:

    1. The trainer is constructed with its config, networks, optimizers and data; it writes
       nothing to disk yet.
    2. On resume the loop loads the checkpoint, refuses it when a key of `resume_keys`
       differs from `config`, restores the torch RNG and the position, then calls
       `load_state_dict` with what `state_dict` returned.
    3. `start(resumed_at=...)` once, before any step: the place for the trainer's own files.
    4. For each phase of `phases` from the position: `begin_phase(index, fresh=...)`; for each
       epoch: `begin_epoch(epoch, start_batch=...)`, then `train_step(batch, step=...)` for
       every batch of `batches(epoch, start_batch=...)`; after an epoch's last batch,
       `end_epoch(epoch, means)`, whose record (if any) is logged. Epochs are counted over the
       whole run (phases included); a resumed run starts mid-epoch with `start_batch > 0`.
    5. After every step the loop reports a `StepLog` to its `on_step` callback and logs the
       window's means every `log_every` steps; it checkpoints (`state_dict`) every
       `checkpoint_every` steps (or seconds), at every epoch end and when it stops; it stops
       after the last phase, at `max_steps` or, when asked to, on SIGINT/SIGTERM.
    6. `finish(result)` is called by the code that ran the loop (rank 0 only), to write the
       final artifacts and return a JSON-able summary.

    Attributes:
        kind: stored in checkpoints, so a checkpoint of another trainer is refused.
        resume_keys: keys of `config` that change what is trained; a resume with other values
            is refused.
        config: the trainer's options (a dataclass), stored in every checkpoint.
        net: the network being trained.
    """

    kind: ClassVar[str]
    resume_keys: ClassVar[tuple[str, ...]]
    config: Any
    net: nn.Module

    @property
    def phases(self) -> Sequence[Phase]:
        """The phases to train, in order: by default one phase named `kind` of
        `config.epochs` epochs."""
        return (Phase(self.kind, int(self.config.epochs)),)

    @property
    @abc.abstractmethod
    def steps_per_epoch(self) -> int:
        """Batches of one epoch; `batches` yields exactly this many from batch 0."""

    @abc.abstractmethod
    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        """The batches of `epoch` from `start_batch` on, identical in a resumed run."""

    @abc.abstractmethod
    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        """Train on one batch; `step` counts the steps done before this one."""

    @abc.abstractmethod
    def lr(self) -> float:
        """The current learning rate (logged)."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain types only (checkpoints
        are read with `weights_only=True`). Keys must not clash with the loop's own
        ("format", "trainer", "phase", "epoch", "batch", "step", "config", "space", "rng")."""

    @abc.abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's state (also holding the loop's keys)."""

    # -- optional hooks: no-ops by default ------------------------------------------------
    def space_spec(self) -> dict[str, Any]:
        """The spec of the space trained, stored in checkpoints ({} when there is none)."""
        return {}

    def start(self, *, resumed_at: int | None) -> None:  # noqa: B027 (optional hook)
        """Before the first step; `resumed_at` is the checkpoint's step (None: fresh start)."""

    def begin_phase(self, index: int, *, fresh: bool) -> None:  # noqa: B027 (optional hook)
        """Phase `index` starts (`fresh`) or continues from a checkpoint inside it."""

    def begin_epoch(self, epoch: int, *, start_batch: int) -> None:  # noqa: B027 (optional hook)
        """Epoch `epoch` starts at `start_batch` (0, or later when resumed mid-epoch)."""

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        """After the epoch's last step. `means` holds the epoch's metric means (over the steps
        of this session), "images_per_s" and "seconds". Returns a record to log (no line when
        empty)."""
        return {}

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Write the final artifacts; returns a JSON-able summary of the training."""
        return {}


class SingleNetTrainer(Trainer):
    """A trainer of one network with one optimizer (`net`, `optimizer`), whose state is theirs.

    Subclasses set `self.optimizer` and implement the remaining abstract methods; the logged
    learning rate is the optimizer's first group's.
    """

    optimizer: torch.optim.Optimizer

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class RunTrainer(Trainer):
    """A trainer of a space's supernet that `nas train-supernet` builds from a `TrainConfig`.

    Registered for a space family in `nas.train.registry.TRAINERS`; `train_run` calls
    `for_run`, records `stage_config()` with the run's stage, runs the loop in
    `runs/NAME/supernet/` and records `finish()`'s summary; the key "val" (role ->
    {"top1", ...}) of that summary is what the command's table shows.
    """

    @classmethod
    @abc.abstractmethod
    def for_run(
        cls,
        cfg: TrainConfig,
        run: RunDir,
        *,
        device: torch.device,
        dist: DistContext,
        resume: bool,
        evaluate: bool,
    ) -> RunTrainer:
        """The trainer of `cfg` for `run` (loads the data, builds the networks; no writes).

        `evaluate`: measure validation accuracy in `finish`.
        """

    @classmethod
    def check_distributed(cls, cfg: TrainConfig, dist: DistContext) -> None:
        """Refuse to run as one process of a torchrun job unless the trainer keeps its replicas
        in step (the default refuses: N unsynchronised copies would each train and write)."""
        if dist.enabled:
            from nas.errors import ConfigError

            raise ConfigError(
                f"--method {cfg.resolved_method}: {cls.kind} training runs in one process "
                f"only, got a torchrun job of {dist.world_size}; start it without torchrun")

    def stage_config(self) -> dict[str, Any]:
        """The resolved options recorded with the run's stage (`config/train-supernet.json`)."""
        from nas.config import config_to_dict

        return config_to_dict(self.config)

    @classmethod
    def saved_options(cls, recorded: Mapping[str, Any]) -> dict[str, Any]:
        """`TrainConfig` values to resume with, from what `stage_config` recorded."""
        return dict(recorded)


__all__ = [
    "LoopResult", "Phase", "Ratio", "RunTrainer", "SingleNetTrainer", "StepOutput", "Trainer",
]
