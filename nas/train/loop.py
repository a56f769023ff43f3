"""The shared step/epoch loop of supernet training, with checkpoints and exact resume.

The loop walks phases -> epochs -> batches from a `Position`. Everything random is a function
of saved state: batch order and augmentation come from `BatchLoader.epoch(e, start_batch=b)`
(a pure function of the seed and epoch), subnet and resolution draws from `step_rng(seed,
step)`, and dropout from the torch RNG state stored in each checkpoint. A run killed at any
moment and resumed from its last checkpoint therefore repeats exactly the steps it lost.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.artifacts import append_jsonl, atomic_write_text, read_jsonl
from nas.config import config_to_dict
from nas.data import BatchLoader
from nas.errors import ConfigError
from nas.supernet import Supernet
from nas.train.checkpoint import Position, capture_rng, restore_rng, save_checkpoint
from nas.train.config import PhaseConfig, TrainConfig
from nas.train.distributed import DistContext
from nas.train.progressive import (
    build_optimizer,
    make_teacher,
    needs_teacher,
    step_rng,
    step_spec,
)
from nas.train.samplers import SubnetSampler
from nas.train.sandwich import StepOptions, StepResult, train_step

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepLog:
    """What a progress display needs after each step (values of that step)."""

    phase: str
    phase_index: int
    num_phases: int
    epoch: int
    step: int
    total_steps: int
    loss: float
    acc_largest: float | None
    acc_smallest: float | None
    images_per_s: float
    lr: float


@dataclass(frozen=True)
class LoopResult:
    """How far training got and how fast it went."""

    steps: int
    completed: bool  # False when stopped by max_steps
    seconds: float
    images: int  # distinct training images seen in this process's session (all ranks)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Window:
    """Sums over one logging interval."""

    steps: int = 0
    images: int = 0
    loss: float = 0.0
    kd: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    subnets: dict[str, int] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, result: StepResult, images: int) -> None:
        self.steps += 1
        self.images += images
        self.loss += result.loss
        self.kd += result.kd_loss
        for role, value in result.losses.items():
            self.losses[role] = self.losses.get(role, 0.0) + value
            self.subnets[role] = self.subnets.get(role, 0) + result.subnets[role]
        for role, value in result.correct.items():
            self.correct[role] = self.correct.get(role, 0) + value
            self.seen[role] = self.seen.get(role, 0) + result.seen[role]

    def record(self) -> dict[str, Any]:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        out: dict[str, Any] = {
            "loss": self.loss / self.steps,  # summed over the step's subnets
            "kd_loss": self.kd / self.steps,
            "images_per_s": self.images / seconds,
        }
        for role, value in self.losses.items():
            out[f"loss_{role}"] = value / self.subnets[role]  # mean over that role's passes
            out[f"acc_{role}"] = self.correct[role] / max(self.seen[role], 1)
        return out


def accuracy(result: StepResult, role: str) -> float | None:
    seen = result.seen.get(role, 0)
    return result.correct[role] / seen if seen else None


class SupernetTrainer:
    """Trains `net` on `loader` following `cfg`; writes checkpoints and metrics (rank 0).

    Args:
        net: the supernet (already on its device).
        loader: the training loader (shuffled, augmented).
        cfg: the resolved training config.
        sampler: draws the subnets.
        checkpoint_file: `supernet/checkpoint.pt`.
        metrics_file: `supernet/metrics.jsonl`.
        space_spec: stored in checkpoints.
        dist: the data-parallel context (single process by default).
        on_step: called after every step with a `StepLog`.
    """

    def __init__(
        self,
        net: Supernet,
        loader: BatchLoader,
        cfg: TrainConfig,
        sampler: SubnetSampler,
        *,
        checkpoint_file: Path,
        metrics_file: Path,
        space_spec: dict[str, Any],
        dist: DistContext | None = None,
        on_step: Callable[[StepLog], None] | None = None,
    ) -> None:
        self.net, self.loader, self.cfg, self.sampler = net, loader, cfg, sampler
        self.checkpoint_file, self.metrics_file = checkpoint_file, metrics_file
        self.space_spec = space_spec
        self.dist = dist or DistContext()
        self.on_step = on_step
        self.device = next(net.parameters()).device
        self.phases = cfg.resolved_phases()
        self.position = Position()
        self.teacher: Supernet | None = None
        self.model: nn.Module = self.dist.wrap(net, self.device)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._pending: dict[str, Any] | None = None  # optimizer state awaiting its phase
        self.scaler = self._make_scaler()
        self._phase_of_optimizer = 0
        # Dropout draws from torch's global generator: seed it so a fresh run is reproducible
        # (and `restore()` replaces this with the checkpoint's saved state).
        torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank)
        self.options = StepOptions(
            label_smoothing=cfg.label_smoothing,
            distill_weight=cfg.distill_weight,
            autocast=self._autocast,
            scaler=self.scaler,
            channels_last=cfg.channels_last,
        )

    # -- set-up -------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return sum(phase.epochs for phase in self.phases) * len(self.loader)

    def _make_scaler(self) -> Any:
        if self.cfg.amp != "fp16":
            return None
        if self.device.type != "cuda":
            raise ConfigError("amp: fp16 needs a CUDA device; use --amp bf16 or none on CPU")
        return torch.amp.GradScaler("cuda")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.cfg.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint loaded by `load_checkpoint`."""
        self.net.load_state_dict(state["model"])
        self.position = state["position"]
        if state.get("teacher") is not None:
            self.teacher = make_teacher(self.net, self.sampler.largest())
            self.teacher.load_state_dict(state["teacher"])
        self.sampler.load_state_dict(state["sampler"])
        self._pending = state
        restore_rng(state["rng"])
        if self.dist.is_main:
            self._truncate_metrics(self.position.step)

    def _truncate_metrics(self, step: int) -> None:
        # lines logged after the checkpoint will be logged again by the resumed run
        kept = [r for r in read_jsonl(self.metrics_file) if int(r.get("step", 0)) <= step]
        if self.metrics_file.exists():
            import json

            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
            atomic_write_text(self.metrics_file, text)

    def _start_phase(self, index: int) -> None:
        phase = self.phases[index]
        if self.position.at_phase_start:
            # Only on a fresh phase start: a checkpoint inside the phase already holds the
            # re-sorted weights and the teacher.
            if phase.shrinks_channels:
                self.net.reorganize_channels()
            if needs_teacher(self.phases, index) and self.teacher is None:
                self.teacher = make_teacher(self.net, self.sampler.largest())
        steps = phase.epochs * len(self.loader)
        self.optimizer, self.scheduler = build_optimizer(
            self.net, self.cfg, phase, steps=steps, steps_per_epoch=len(self.loader)
        )
        pending = self._pending
        if pending is not None and pending.get("optimizer_phase") == index:
            if not self.position.at_phase_start:
                self.optimizer.load_state_dict(pending["optimizer"])
                self.scheduler.load_state_dict(pending["scheduler"])
                if self.scaler is not None and pending.get("scaler") is not None:
                    self.scaler.load_state_dict(pending["scaler"])
        self._pending = None

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Save the full training state (rank 0; other ranks wait so all stay in step)."""
        if self.dist.is_main:
            assert self.optimizer is not None and self.scheduler is not None
            state = {
                "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "optimizer_phase": self._phase_of_optimizer,
                "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                "rng": capture_rng(),
                "sampler": self.sampler.state_dict(),
                "position": self.position,
                "config": config_to_dict(self.cfg),
                "space": self.space_spec,
            }
            save_checkpoint(self.checkpoint_file, state)
        self.dist.barrier()

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> LoopResult:
        """Train until the last phase ends or `cfg.max_steps` steps are done."""
        started, images, start_step = time.perf_counter(), 0, self.position.step
        completed = True
        while self.position.phase < len(self.phases):
            index = self.position.phase
            self._phase_of_optimizer = index
            self._start_phase(index)
            stopped, seen = self._run_phase(index)
            images += seen
            if stopped:
                completed = self.position.phase >= len(self.phases)
                break
        if self.dist.is_main and self.position.step > start_step:
            logger.info("trained %d steps", self.position.step - start_step)
        return LoopResult(self.position.step, completed, time.perf_counter() - started, images)

    def _run_phase(self, index: int) -> tuple[bool, int]:
        phase, images = self.phases[index], 0
        window = _Window()
        first_epoch = sum(p.epochs for p in self.phases[:index])  # loader epochs differ by phase
        while self.position.phase == index:
            epoch, start = self.position.epoch, self.position.batch
            for images_batch, labels in self.loader.epoch(first_epoch + epoch, start_batch=start):
                result = self._step(phase, images_batch, labels)
                images += int(images_batch.shape[0])
                window.add(result, int(images_batch.shape[0]))
                self.position = self.position.advanced(len(self.loader), phase.epochs)
                self._after_step(phase, index, result, window)
                if self.position.step % self.cfg.log_every == 0:
                    window = self._log(phase, epoch, window)
                if self._stop_requested():
                    self._log(phase, epoch, window)
                    self.checkpoint()
                    return True, images
                if self.position.step % self.cfg.checkpoint_every == 0:
                    self.checkpoint()
                if self.position.phase != index or self.position.epoch != epoch:
                    break
        self._log(phase, phase.epochs - 1, window)
        self.checkpoint()  # phase end
        return False, images

    def _stop_requested(self) -> bool:
        return self.cfg.max_steps is not None and self.position.step >= self.cfg.max_steps

    def _step(self, phase: PhaseConfig, images: torch.Tensor, labels: torch.Tensor) -> StepResult:
        assert self.optimizer is not None and self.scheduler is not None
        spec = step_spec(
            phase,
            self.sampler,
            step_rng(self.cfg.seed, self.position.step),
            num_random=self.cfg.num_random,
            teacher=self.teacher,
        )
        images, labels = self.dist.shard(images, labels)
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        result = train_step(self.model, self.net, images, labels, spec, self.options)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return result

    def _after_step(
        self, phase: PhaseConfig, index: int, result: StepResult, window: _Window
    ) -> None:
        if self.on_step is None:
            return
        seconds = max(time.perf_counter() - window.started, 1e-9)
        assert self.optimizer is not None
        self.on_step(
            StepLog(
                phase=phase.name,
                phase_index=index,
                num_phases=len(self.phases),
                epoch=self.position.epoch,
                step=self.position.step,
                total_steps=min(self.total_steps, self.cfg.max_steps or self.total_steps),
                loss=result.loss,
                acc_largest=accuracy(result, "largest"),
                acc_smallest=accuracy(result, "smallest"),
                images_per_s=window.images / seconds,
                lr=float(self.optimizer.param_groups[0]["lr"]),
            )
        )

    def _log(self, phase: PhaseConfig, epoch: int, window: _Window) -> _Window:
        if window.steps == 0:
            return window
        if self.dist.is_main:
            assert self.optimizer is not None
            record = {
                "phase": phase.name,
                "epoch": epoch,
                "step": self.position.step,
                "lr": float(self.optimizer.param_groups[0]["lr"]),
                "world_size": self.dist.world_size,
                **window.record(),
            }
            append_jsonl(self.metrics_file, record)
        return _Window()
