"""The one training loop: position, checkpoints, exact resume, metrics and stopping.

Every trainer (`nas.train.trainer.Trainer`) runs inside `TrainingLoop`. The loop walks
phases -> epochs -> batches from a `Position`; a trainer keeps everything random a function of
saved state (batch order from the seed and epoch, per-step draws from the seed and step, the
rest in its `state_dict`), and the loop stores the torch RNG state with every checkpoint, so a
run killed at any moment and resumed from its last checkpoint repeats exactly the steps it
lost. Only rank 0 of a data-parallel job writes; the other ranks wait at each checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from nas.artifact_kinds import CHECKPOINT
from nas.config import config_to_dict, differing_keys
from nas.errors import ArtifactError, ConfigError, IncompatibleArtifactError
from nas.readers import damaged
from nas.train.checkpoint import (
    CHECKPOINT_FILE,
    DEFAULT_CHECKPOINT_MINUTES,
    Position,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from nas.train.distributed import DistContext
from nas.train.metrics import MetricsLog, Window
from nas.train.trainer import LoopResult, Phase, StepOutput, Trainer

logger = logging.getLogger(__name__)
# what the loop stores in a checkpoint beside the trainer's `state_dict()`
_LOOP_KEYS = frozenset({"format", "trainer", "position", "phase", "epoch", "batch", "step",
                        "config", "space", "rng", "rng_ranks"})


@dataclass(frozen=True)
class StepLog:
    """What a progress display needs after each step (values of that step), for any trainer.

    `epoch` is counted within the phase; `epoch_end` is the record `Trainer.end_epoch` logged
    when this step ended an epoch (None otherwise).
    """

    phase: str
    phase_index: int
    num_phases: int
    epoch: int
    step: int
    total_steps: int
    loss: float
    acc: float | None
    acc_smallest: float | None
    images_per_s: float
    lr: float
    epoch_end: Mapping[str, Any] | None = None
    resumed_from: int | None = None  # the checkpoint's step when this session resumed


class HasLoopOptions(Protocol):
    """A config with the loop's options (TrainConfig, BilevelConfig, EvalTrainConfig)."""

    @property
    def max_steps(self) -> int | None: ...
    @property
    def checkpoint_every(self) -> int: ...
    @property
    def log_every(self) -> int: ...
    @property
    def checkpoint_minutes(self) -> float: ...




@dataclass(frozen=True)
class LoopOptions:
    """When the loop stops, checkpoints and logs.

    Attributes:
        max_steps: stop after this many steps in all (schedules ignore it).
        checkpoint_every: steps between checkpoints, besides every epoch end and the stop.
        checkpoint_seconds: also checkpoint when this long has passed since the last one.
        log_every: steps per metrics.jsonl line (None: epoch records only).
        save_on_signal: on SIGINT/SIGTERM finish the step, checkpoint, then raise
            KeyboardInterrupt / SystemExit (main thread only). A second signal during the
            same step stops at once, as without the option.
    """

    max_steps: int | None = None
    checkpoint_every: int | None = None
    checkpoint_seconds: float | None = None
    log_every: int | None = None
    save_on_signal: bool = False

    @classmethod
    def of(cls, config: HasLoopOptions, **extra: Any) -> LoopOptions:
        """The options of a command's config: checkpoints by steps and by time, and a
        checkpoint on SIGINT/SIGTERM before stopping (so `--resume` always has one)."""
        if not config.checkpoint_minutes > 0:  # NaN too
            raise ConfigError(f"checkpoint_minutes: expected a positive number of minutes, got "
                              f"{config.checkpoint_minutes}")
        values: dict[str, Any] = {
            "max_steps": config.max_steps, "checkpoint_every": config.checkpoint_every,
            "log_every": config.log_every, "checkpoint_seconds": 60 * config.checkpoint_minutes,
            "save_on_signal": True,
        }
        return cls(**{**values, **extra})


class TrainingLoop:
    """Runs `trainer` with checkpoints and logs in `directory` (rank 0 writes).

    Args:
        trainer: what is trained.
        directory: holds `checkpoint.pt` and the metrics log.
        options: stopping, checkpoint and logging intervals.
        dist: the data-parallel context (single process by default).
        on_step: called after every step with a `StepLog`.
        label: names what is trained in messages ("run 'r1'").
        elsewhere: how to train elsewhere instead of resuming ("pick another --run").
        log_name: the metrics log's file name.
    """

    def __init__(
        self,
        trainer: Trainer,
        directory: Path,
        *,
        options: LoopOptions,
        dist: DistContext | None = None,
        on_step: Callable[[StepLog], None] | None = None,
        label: str = "this run",
        elsewhere: str = "pick another --run",
        log_name: str = "metrics.jsonl",
    ) -> None:
        self.trainer, self.options = trainer, options
        self.checkpoint_file = directory / CHECKPOINT_FILE
        self.metrics_file = directory / log_name
        self.dist = dist or DistContext()
        self.log = MetricsLog(self.metrics_file, enabled=self.dist.is_main)
        self.on_step, self.label, self.elsewhere = on_step, label, elsewhere
        self.phases: Sequence[Phase] = tuple(trainer.phases)
        self.position = Position()
        self._last_checkpoint = time.monotonic()
        self._signal: int | None = None
        self._resumed_at: int | None = None

    @property
    def total_steps(self) -> int:
        return sum(phase.epochs for phase in self.phases) * self.trainer.steps_per_epoch

    # -- resume ---------------------------------------------------------------------------
    def load(self, *, resume: bool | None, refuse: Sequence[Path] = ()) -> dict[str, Any] | None:
        """The checkpoint to continue from (None: a fresh start), after refusing unsafe starts.

        Args:
            resume: True continues from the checkpoint, False starts fresh, None continues
                when there is a checkpoint.
            refuse: more files that a fresh start must not find (final weights).

        Raises:
            ConfigError: a fresh start over a checkpoint, or a resume with other values of
                the trainer's `resume_keys`.
            ArtifactError: a resume without a checkpoint, or one of another trainer.
        """
        path = self.checkpoint_file
        if resume is None:
            resume = path.is_file()
        if not resume:
            found = next((p for p in (path, *refuse) if p.is_file()), None)
            if found is not None:
                raise ConfigError(f"{self.label} has already trained ({found}); pass --resume "
                                  f"to continue it, or {self.elsewhere}")
            return None
        if not path.is_file():
            raise ArtifactError(f"--resume: {self.label} has no checkpoint at {path}; start it "
                                "without --resume")
        state = load_checkpoint(path)
        if state.get("trainer") != self.trainer.kind:
            raise IncompatibleArtifactError(
                f"{path}: expected a checkpoint of {self.trainer.kind} training, got one of "
                f"{state.get('trainer')!r}; {self.elsewhere}")
        self._check_options(state["config"])
        return state

    def _check_options(self, saved: Mapping[str, Any]) -> None:
        current = config_to_dict(self.trainer.config)
        changed = differing_keys(saved, current, self.trainer.resume_keys)
        if changed:
            key = changed[0]
            raise ConfigError(
                f"{self.label} was started with other options (option '{key}' was "
                f"{saved.get(key)!r}, got {current.get(key)!r}); resume with the same options, "
                f"or {self.elsewhere}")

    def _restore(self, state: dict[str, Any]) -> None:
        self.position = state["position"]
        try:
            self.trainer.load_state_dict(state)
            restore_rng(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            # a checkpoint of the right format whose content does not fit the trainer
            first = (str(exc).splitlines() or [""])[0][:120]
            raise damaged(self.checkpoint_file, f"its state does not fit the "
                          f"{self.trainer.kind} trainer ({type(exc).__name__}: {first})",
                          CHECKPOINT) from None
        logger.info("resumed from step %d of %d", self.position.step, self.total_steps)

    def _restore_rank_rng(self, state: dict[str, Any]) -> None:
        """Each rank draws its own dropout masks: it continues from its own saved RNG state."""
        if self.dist.enabled and not self.dist.restore_rng(state.get("rng_ranks")):
            logger.warning("the checkpoint was saved by another number of processes: random "
                           "draws of ranks > 0 differ from an uninterrupted run's")

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Save the full training state (rank 0; other ranks wait so all stay in step)."""
        rng_ranks = self.dist.gather_rng()
        if self.dist.is_main:
            own = self.trainer.state_dict()
            assert not own.keys() & _LOOP_KEYS, f"{type(self.trainer).__name__}.state_dict " \
                f"uses keys of the loop: {sorted(own.keys() & _LOOP_KEYS)}"
            state = {
                **own,
                "trainer": self.trainer.kind,
                "position": self.position,
                "config": config_to_dict(self.trainer.config),
                "space": self.trainer.space_spec(),
                "rng": capture_rng(),
                "rng_ranks": rng_ranks,
            }
            save_checkpoint(self.checkpoint_file, state)
        self._last_checkpoint = time.monotonic()
        self.dist.barrier()

    # -- the loop -------------------------------------------------------------------------
    def run(self, state: dict[str, Any] | None = None) -> LoopResult:
        """Train from `state` (a checkpoint from `load`, or None) to the end or `max_steps`."""
        resumed_at = None if state is None else int(state["position"].step)
        self._resumed_at = resumed_at
        if state is not None:
            self._restore(state)
            self._restore_rank_rng(state)
        self.log.prepare(resumed_at)
        self.trainer.start(resumed_at=resumed_at)
        started, images, start_step = time.perf_counter(), 0, self.position.step
        self._last_checkpoint = time.monotonic()
        with self._signals():
            stopped = self._stop_requested()
            while not stopped and self.position.phase < len(self.phases):
                stopped, seen = self._run_phase(self.position.phase)
                images += seen
        if self.dist.is_main and self.position.step > start_step:
            logger.info("trained %d steps", self.position.step - start_step)
            self._plot()
        return LoopResult(
            steps=self.position.step,
            completed=self.position.phase >= len(self.phases),
            seconds=time.perf_counter() - started,
            images=images,
            epochs_done=self.epochs_done(self.position),
            resumed_from=resumed_at,
        )

    def _plot(self) -> None:
        """curves.png beside the metrics log (`nas runs plot` redraws it on demand)."""
        from nas.train.curves import plot_curves

        try:
            plot_curves(self.metrics_file, title=f"training curves: {self.label}")
        except (OSError, ValueError, RuntimeError) as exc:  # a plot never fails a training
            logger.warning("could not draw the training curves: %s", exc)

    def epochs_done(self, position: Position) -> int:
        """Whole epochs trained before `position`, over all phases."""
        return self._first_epoch(position.phase) + position.epoch

    def _first_epoch(self, phase: int) -> int:
        return sum(p.epochs for p in self.phases[:phase])

    def _run_phase(self, index: int) -> tuple[bool, int]:
        """Train phase `index` from the position; (stopped early, images seen)."""
        phase, images = self.phases[index], 0
        self.trainer.begin_phase(index, fresh=self.position.at_phase_start)
        window = Window()
        while self.position.phase == index:
            epoch, start = self.position.epoch, self.position.batch
            run_epoch = self._first_epoch(index) + epoch
            self.trainer.begin_epoch(run_epoch, start_batch=start)
            epoch_window = Window()
            for batch in self.trainer.batches(run_epoch, start_batch=start):
                output = self.trainer.train_step(batch, step=self.position.step)
                self.position = self.position.advanced(self.trainer.steps_per_epoch,
                                                       phase.epochs)
                images += output.images
                window.add(output)
                epoch_window.add(output)
                speed = window.images / window.seconds  # the display's, before a log resets it
                if self.options.log_every and self.position.step % self.options.log_every == 0:
                    window = self._log(phase, epoch, window)
                ended = self.position.phase != index or self.position.epoch != epoch
                record = self._end_epoch(phase, epoch, run_epoch, epoch_window) if ended else None
                self._report(index, epoch, output, speed, record)
                if self._stop_requested():
                    self._log(phase, epoch, window)
                    self.checkpoint()
                    self._raise_on_signal()
                    return True, images
                if self.position.phase != index:
                    window = self._log(phase, epoch, window)  # the phase's last lines
                if ended or self._checkpoint_due():
                    self.checkpoint()
                if ended:
                    break
            else:  # the epoch's batches ran out before the epoch ended
                raise RuntimeError(f"{type(self.trainer).__name__}.batches ended epoch "
                                   f"{run_epoch} after batch {self.position.batch}, expected "
                                   f"{self.trainer.steps_per_epoch} batches")
        return False, images

    def _end_epoch(
        self, phase: Phase, epoch: int, run_epoch: int, window: Window
    ) -> dict[str, Any] | None:
        means = {**window.record(), "seconds": window.seconds} if window.steps else {}
        record = self.trainer.end_epoch(run_epoch, means)
        if not record:
            return None
        self.log.write({"phase": phase.name, "epoch": epoch, "step": self.position.step,
                        **record})
        return record

    def _checkpoint_due(self) -> bool:
        every, seconds = self.options.checkpoint_every, self.options.checkpoint_seconds
        if every and self.position.step % every == 0:
            return True
        due = seconds is not None and time.monotonic() - self._last_checkpoint >= seconds
        return self._agreed(due)

    def _stop_requested(self) -> bool:
        limit = self.options.max_steps
        if limit is not None and self.position.step >= limit:
            return True
        return self._agreed(self._signal is not None)

    def _agreed(self, flag: bool) -> bool:
        """`flag` as rank 0 sees it (each rank's clock and signals differ; all must agree)."""
        if not (self.options.save_on_signal or self.options.checkpoint_seconds is not None):
            return flag
        return self.dist.rank0_flag(flag)

    def _report(
        self, index: int, epoch: int, output: StepOutput, speed: float,
        record: dict[str, Any] | None,
    ) -> None:
        if self.on_step is None:
            return
        limit = self.options.max_steps
        self.on_step(StepLog(
            phase=self.phases[index].name,
            phase_index=index,
            num_phases=len(self.phases),
            epoch=epoch,  # the step's own (the position has moved on after an epoch's last)
            step=self.position.step,
            total_steps=min(self.total_steps, limit or self.total_steps),
            loss=output.loss,
            acc=output.acc,
            acc_smallest=output.acc_smallest,
            images_per_s=speed,
            lr=self.trainer.lr(),
            epoch_end=record,
            resumed_from=self._resumed_at,
        ))

    def _log(self, phase: Phase, epoch: int, window: Window) -> Window:
        if window.steps == 0:
            return window
        if self.options.log_every:
            self.log.write({
                "phase": phase.name,
                "epoch": epoch,
                "step": self.position.step,
                "lr": self.trainer.lr(),
                "world_size": self.dist.world_size,
                **window.record(),
            })
        return Window()

    # -- signals --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """With `save_on_signal`, SIGINT/SIGTERM only ask the loop to stop after this step."""
        main = threading.current_thread() is threading.main_thread()
        if not (self.options.save_on_signal and main):  # handlers only work in the main thread
            yield
            return

        def note(signum: int, frame: FrameType | None) -> None:
            if self._signal is not None:  # asked twice: the user does not want to wait
                self._raise(signum)
            self._signal = signum

        previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _raise_on_signal(self) -> None:
        if self._signal is None:
            return
        logger.info("stopped by signal %d at step %d (checkpoint saved)", self._signal,
                    self.position.step)
        self._raise(self._signal)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


__all__ = ["DEFAULT_CHECKPOINT_MINUTES", "LoopOptions", "StepLog", "TrainingLoop"]
