"""One `nas train-supernet` run end to end: checks, data, space, training, weights, evaluation.

The command (nas/commands/train.py) only parses options and draws progress; this module does
the work so that tests and scripts can run training without the CLI.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.artifacts import RunDir
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits, load_dataset
from nas.errors import ArtifactError, ConfigError
from nas.supernet import Supernet
from nas.train.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    save_weights,
    weights_path,
)
from nas.train.config import TrainConfig, resume_mismatches
from nas.train.distributed import DistContext
from nas.train.loop import LoopResult, StepLog, SupernetTrainer
from nas.train.samplers import make_sampler
from search_spaces import SPACES, SearchSpace, create_space

logger = logging.getLogger(__name__)
STAGE = "train-supernet"


@dataclass(frozen=True)
class TrainSummary:
    """What the command shows at the end (and what goes into the manifest)."""

    steps: int
    completed: bool
    seconds: float
    images_per_s: float
    # role ("largest", "smallest") -> {"top1" (percent), "loss", "n"}
    val: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "completed": self.completed,
            "seconds": round(self.seconds, 2),
            "images_per_s": round(self.images_per_s, 1),
            "val": self.val,
        }


def build_space(cfg: TrainConfig, splits: DatasetSplits) -> SearchSpace:
    """The space `cfg.space` sized for the dataset (classes, channels, resolutions)."""
    offered: dict[str, Any] = {
        "num_classes": splits.num_classes,
        "in_channels": splits.channels,
        "image_size": cfg.image_size,
        "resolutions": list(cfg.resolutions),
        "width_mult": cfg.width_mult,
        "small_input": cfg.small_input,
    }
    accepted = inspect.signature(SPACES.get(cfg.space).__init__).parameters
    kwargs = {k: v for k, v in offered.items() if k in accepted and v is not None}
    if "resolutions" not in accepted and len(cfg.resolutions) > 1:
        logger.warning("space %s has no elastic resolution; resolutions only resize", cfg.space)
    return create_space(cfg.space, **kwargs)


def check_run_state(run: RunDir, cfg: TrainConfig, *, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a fresh run), after refusing unsafe starts.

    Raises:
        ConfigError: a fresh start into a run that already trained, or a resume whose config
            differs in a key that changes what is trained.
        ArtifactError: `--resume` without a checkpoint.
    """
    ckpt = checkpoint_path(run)
    if not resume:
        if ckpt.is_file() or weights_path(run).is_file():
            raise ConfigError(
                f"run '{run.name}' already has a trained supernet ({ckpt.parent}); "
                "pass --resume to continue it, or pick another --run"
            )
        return None
    if not ckpt.is_file():
        raise ArtifactError(
            f"--resume: run '{run.name}' has no checkpoint at {ckpt}; "
            "start it without --resume"
        )
    state = load_checkpoint(ckpt)
    differing = resume_mismatches(state["config"], config_to_dict(cfg))
    if differing:
        key = differing[0]
        raise ConfigError(
            f"--resume: option '{key}' was {state['config'].get(key)!r} when run '{run.name}' "
            f"started, got {config_to_dict(cfg).get(key)!r}; resume with the run's options "
            "(omitted options keep their saved values) or train into another --run"
        )
    return state


def evaluate_endpoints(
    net: Supernet, splits: DatasetSplits, cfg: TrainConfig, *, device: torch.device
) -> dict[str, dict[str, float]]:
    """Val top-1/loss of the largest and smallest subnets after BN recalibration.

    `evaluate_subnet` recalibrates an extracted copy, so the supernet's own batch-norm
    statistics (saved weights, a later resume) are untouched.
    """
    from nas.evaluate import evaluate_subnet

    sampler = make_sampler("uniform", net.space, resolutions=cfg.resolutions, seed=cfg.seed)
    out: dict[str, dict[str, float]] = {}
    for role, arch in (("largest", sampler.largest()), ("smallest", sampler.smallest())):
        metrics = evaluate_subnet(
            net, arch, splits, split="val",
            batch_size=cfg.eval_batch_size, calibration_batches=cfg.bn_calibration_batches,
            seed=cfg.seed, device=device,
        )
        out[role] = {key: float(value) for key, value in metrics.items()}
    return out


def train_run(
    cfg: TrainConfig,
    run: RunDir,
    *,
    resume: bool = False,
    on_step: Callable[[StepLog], None] | None = None,
    dist: DistContext | None = None,
    device: torch.device | None = None,
    evaluate: bool = True,
) -> TrainSummary:
    """Train a supernet into `run` (creating or resuming it) and write its artifacts.

    Args:
        cfg: resolved options.
        run: the run folder.
        resume: continue from `supernet/checkpoint.pt`.
        on_step: progress callback.
        dist: data-parallel context (default: from torchrun's environment).
        device: override of `cfg.device` (DDP ranks pass their own).
        evaluate: measure val top-1 of the largest/smallest subnets at the end.
    """
    dist = dist or DistContext.from_env()
    device = device or dist.device(cfg.device)
    dist.check_batch(cfg.batch_size)
    if is_darts_family(cfg.space):  # bilevel search keeps its own checkpoints and resume
        return _train_darts(cfg, run, resume=resume, device=device)
    state = check_run_state(run, cfg, resume=resume)
    dist.setup(device)
    splits = load_dataset(
        cfg.dataset,
        data_dir=None if cfg.data_dir is None else Path(cfg.data_dir),
        image_size=cfg.image_size,
        seed=cfg.seed,
    )
    space = build_space(cfg, splits)
    if dist.is_main:
        run.begin_stage(STAGE, config=config_to_dict(cfg), seed=cfg.seed, device=str(device))
        run.update_manifest(space=space.spec())
    dist.barrier()
    try:
        net, result = _train(cfg, run, space, splits, state, device, dist, on_step)
    except BaseException:
        if dist.is_main:
            run.end_stage(STAGE, status="interrupted")
        raise
    val: dict[str, dict[str, float]] = {}
    if dist.is_main:
        save_weights(run, net, space_spec=space.spec(), train_config=config_to_dict(cfg))
        if evaluate:
            val = evaluate_endpoints(net, splits, cfg, device=device)
    summary = TrainSummary(
        result.steps, result.completed, result.seconds, result.images_per_s, val
    )
    if dist.is_main:
        run.end_stage(STAGE, summary=summary.as_dict())
    dist.barrier()
    return summary


def _train(
    cfg: TrainConfig,
    run: RunDir,
    space: SearchSpace,
    splits: DatasetSplits,
    state: dict[str, Any] | None,
    device: torch.device,
    dist: DistContext,
    on_step: Callable[[StepLog], None] | None,
) -> tuple[Supernet, LoopResult]:
    torch.manual_seed(cfg.seed)  # any initialisation that draws from torch's global RNG
    net = space.build_supernet().to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    loader = BatchLoader.for_splits(
        splits, "train", batch_size=cfg.batch_size, device=device, seed=cfg.seed, train=True
    )
    sampler = make_sampler(
        cfg.sampler, space, resolutions=cfg.resolutions, seed=cfg.seed, bins=cfg.complexity_bins
    )
    trainer = SupernetTrainer(
        net, loader, cfg, sampler,
        checkpoint_file=checkpoint_path(run),
        metrics_file=run.sub("supernet", "metrics.jsonl"),
        space_spec=space.spec(),
        dist=dist,
        on_step=on_step if dist.is_main else None,
    )
    if state is not None:
        trainer.restore(state)
    return net, trainer.run()


def is_darts_family(name: str) -> bool:
    """DARTS-like spaces (cells with architecture weights) train bilevel, not by sandwich."""
    cls = SPACES.get(name) if name in SPACES else None
    return name.startswith(("darts", "pc-darts")) or getattr(cls, "family", "") == "darts"


def _train_darts(
    cfg: TrainConfig, run: RunDir, *, resume: bool, device: torch.device
) -> TrainSummary:
    """Dispatch point for DARTS-family spaces: bilevel training lives in `nas.train.bilevel`."""
    try:
        from nas.train import bilevel
    except ImportError:
        raise ConfigError(
            f"space '{cfg.space}' trains with bilevel optimisation (nas.train.bilevel), "
            "which this installation does not provide yet"
        ) from None
    result: TrainSummary = bilevel.train_darts(cfg, run, resume=resume, device=device)
    return result
