"""One `nas train-supernet` run end to end: the space's trainer in the loop, with the run's
stage bookkeeping.

The trainer comes from `nas.train.registry` by the space's family and the method; the
command (nas/commands/train.py) only parses options and draws progress, so tests and scripts
can train without the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nas.artifact_kinds import STAGE_CONFIG
from nas.artifacts import RunDir, read_json
from nas.locks import stage_lock
from nas.supernet.weights import SUPERNET_LOCK, weights_path
from nas.train.checkpoint import checkpoint_path
from nas.train.config import DEFAULT_METHOD, STAGE, TrainConfig
from nas.train.distributed import DistContext
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.registry import TRAINERS, family_of
from nas.train.stage import recorded_stage
from nas.train.trainer import LoopResult, RunTrainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSummary:
    """What the command shows at the end (and what goes into the manifest)."""

    steps: int
    completed: bool
    seconds: float
    images_per_s: float
    # role ("largest", "smallest"; "derived" for a DARTS search) -> {"top1" (percent), ...}
    val: dict[str, dict[str, float]]
    details: dict[str, Any] = field(default_factory=dict)  # the trainer's own (genotype ...)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.details,
            "steps": self.steps,
            "completed": self.completed,
            "seconds": round(self.seconds, 2),
            "images_per_s": round(self.images_per_s, 1),
            "val": self.val,
        }


def trainer_class(cfg: TrainConfig) -> type[RunTrainer]:
    """The trainer of `cfg`: its space's family and method, looked up in the registry."""
    found = TRAINERS.trainer(cfg.family, cfg.resolved_method)
    if not (isinstance(found, type) and issubclass(found, RunTrainer)):
        raise TypeError(f"{found!r}, registered for {cfg.family}/{cfg.resolved_method}, is not "
                        "a RunTrainer")
    return found


def train_run(
    cfg: TrainConfig,
    run: RunDir,
    *,
    resume: bool | None = False,
    on_step: Callable[[StepLog], None] | None = None,
    dist: DistContext | None = None,
    device: torch.device | None = None,
    evaluate: bool = True,
    wait: bool = False,
) -> TrainSummary:
    """Train the supernet of `cfg.space` into `run` (creating or resuming it).

    Args:
        cfg: resolved options.
        run: the run folder.
        resume: continue from `supernet/checkpoint.pt`; None: continue when it exists.
        on_step: progress callback.
        dist: data-parallel context (default: from torchrun's environment).
        device: override of `cfg.device` (DDP ranks pass their own).
        evaluate: measure val top-1 at the end.
        wait: queue behind another process training this run instead of failing.

    Raises:
        ConfigError: a fresh start into a run that already trained, or a resume whose options
            differ in a key that changes what is trained.
        ArtifactError: `--resume` without a checkpoint.
        BusyError: another living process trains this run (and `wait` is False).
    """
    dist = dist or DistContext.from_env()
    # one process trains a run's supernet at a time (rank 0 holds the lock for all ranks)
    with stage_lock(run.path, SUPERNET_LOCK, wait=wait, enabled=dist.is_main,
                    hint="or train another --run"):
        return _train_run(cfg, run, resume, on_step, dist, device, evaluate)


def _train_run(
    cfg: TrainConfig, run: RunDir, resume: bool | None,
    on_step: Callable[[StepLog], None] | None, dist: DistContext, device: torch.device | None,
    evaluate: bool,
) -> TrainSummary:
    device = device or dist.device(cfg.device)
    with dist.joined(device):
        if resume is None:  # rank 0 decides: a rank whose disk lacks the file then fails
            resume = dist.rank0_flag(checkpoint_path(run).is_file())
        with dist.agreed("preparing the run"), run.kept_only_if_used():
            # no rank left at a collective on bad input; a refused start leaves no run folder
            trainer_cls = trainer_class(cfg)
            trainer_cls.check_distributed(cfg, dist)
            trainer = trainer_cls.for_run(cfg, run, device=device, dist=dist, resume=resume,
                                          evaluate=evaluate)
            loop = TrainingLoop(trainer, checkpoint_path(run).parent,
                                options=LoopOptions.of(cfg), dist=dist,
                                on_step=on_step if dist.is_main else None,
                                label=f"run '{run.name}'")
            state = loop.load(resume=resume, refuse=(weights_path(run),))
        return _train_recorded(cfg, run, trainer, loop, state, device=device)


def _train_recorded(
    cfg: TrainConfig, run: RunDir, trainer: RunTrainer, loop: TrainingLoop,
    state: dict[str, Any] | None, *, device: torch.device,
) -> TrainSummary:
    """Run the loop inside the run's stage record (rank 0 records, writes and evaluates)."""
    dist = loop.dist
    with recorded_stage(run, STAGE, config=trainer.stage_config(), seed=cfg.seed,
                        device=str(device), enabled=dist.is_main) as recorded:
        if dist.is_main:
            run.update_manifest(space=trainer.space_spec())
        dist.barrier()
        _, result = _train(loop, state)
        # the other ranks are done: they need not wait while rank 0 writes and evaluates
        details = trainer.finish(result) if dist.is_main else {}
        summary = TrainSummary(result.steps, result.completed, result.seconds,
                               result.images_per_s, details.pop("val", {}), details)
        recorded.update(summary.as_dict())
    return summary


def _train(loop: TrainingLoop, state: dict[str, Any] | None) -> tuple[torch.nn.Module, LoopResult]:
    """The trained network and how far the loop got (one place for tests to observe ranks)."""
    result = loop.run(state)
    return loop.trainer.net, result


def saved_options(run: RunDir) -> dict[str, Any] | None:
    """The `TrainConfig` values `run`'s supernet stage last started with (None: it has no
    checkpoint), so `--resume` needs no options repeated."""
    path = run.path / "config" / f"{STAGE}.json"
    if not checkpoint_path(run).is_file() or not path.is_file():
        return None
    recorded = read_json(path, STAGE_CONFIG)
    if not isinstance(recorded, dict) or "space" not in recorded:
        return None
    family = family_of(str(recorded["space"]))
    method = TRAINERS.resolve(family, str(recorded.get("method", DEFAULT_METHOD)),
                              default=DEFAULT_METHOD)
    trainer: type[RunTrainer] = TRAINERS.trainer(family, method)
    return trainer.saved_options(recorded)

__all__ = ["STAGE", "TrainSummary", "saved_options", "train_run", "trainer_class"]
