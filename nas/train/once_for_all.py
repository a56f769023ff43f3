"""Once-for-all supernet training (`--method sandwich` or `ps`) as a trainer of the shared loop.

Subnet and resolution draws come from `step_rng(seed, step)` and batches from the loader's
(seed, epoch) order, so a resumed run draws exactly what a straight run draws; progressive
shrinking's phases are the loop's phases, each with its own optimizer (see progressive.py).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from nas.artifacts import RunDir, atomic_write_json
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.supernet import Supernet
from nas.supernet.few_shot import FEW_SHOT_FILE, FewShotSupernet, Split, groups_text
from nas.supernet.weights import save_weights
from nas.train.config import RESUME_KEYS, TrainConfig
from nas.train.distributed import DistContext
from nas.train.few_shot import DEFAULT_BATCHES, choose_split, inherit_optimizer
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.pada import PadaSampler
from nas.train.progressive import build_optimizer, make_teacher, needs_teacher, step_rng, step_spec
from nas.train.samplers import SubnetSampler, make_sampler
from nas.train.sandwich import StepOptions, StepResult, StepSpec, train_step
from nas.train.trainer import LoopResult, Phase, Ratio, RunTrainer, StepOutput
from search_spaces import SPACES, SearchSpace, create_offered_space, parse_space_options

logger = logging.getLogger(__name__)


def accuracy(result: StepResult, role: str) -> float | None:
    seen = result.seen.get(role, 0)
    return result.correct[role] / seen if seen else None


def step_metrics(result: StepResult) -> dict[str, float | Ratio]:
    """The logged values of a step: per-role losses are means over that role's passes."""
    metrics: dict[str, float | Ratio] = {"loss": result.loss, "kd_loss": result.kd_loss}
    for role, value in result.losses.items():
        metrics[f"loss_{role}"] = Ratio(value, result.subnets[role])
        metrics[f"acc_{role}"] = Ratio(result.correct[role], result.seen[role])
    return metrics


class OnceForAllTrainer(RunTrainer):
    """Trains `net` on `loader` following `cfg` (sandwich rule or progressive shrinking).

    Args:
        net: the supernet (already on its device).
        loader: the training loader (shuffled, augmented).
        cfg: the resolved training config.
        sampler: draws the subnets.
        space_spec: stored in checkpoints.
        dist: the data-parallel context (single process by default).
        splits: the dataset, for the endpoints' validation in `finish` (None: no evaluation).
        run: where `finish` writes the weights (None: nowhere).
    """

    kind = "once-for-all"
    resume_keys = RESUME_KEYS
    net: Supernet
    config: TrainConfig

    def __init__(
        self,
        net: Supernet,
        loader: BatchLoader,
        cfg: TrainConfig,
        sampler: SubnetSampler,
        *,
        space_spec: dict[str, Any],
        dist: DistContext | None = None,
        splits: DatasetSplits | None = None,
        run: RunDir | None = None,
    ) -> None:
        self.net, self.loader, self.config, self.sampler = net, loader, cfg, sampler
        self.cfg = cfg
        self._space_spec, self.splits, self.run = space_spec, splits, run
        self.dist = dist or DistContext()
        self.device = next(net.parameters()).device
        self.phase_configs = cfg.resolved_phases()
        self.teacher: Supernet | None = None
        self.dist.check_batch(min(loader.batch_size, len(loader.split)))
        if self.dist.enabled and sampler.observes:
            raise ConfigError(f"sampler '{sampler.kind}': expected one process, got "
                              f"{self.dist.world_size}; use --sampler uniform with torchrun")
        sampler.attach(loader)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._pending: Mapping[str, Any] | None = None  # optimizer state awaiting its phase
        # few_shot.json's record of the split, once made (checkpointed as JSON text)
        self.few_shot: dict[str, Any] | None = None
        self._phase = 0
        self.scaler = self._make_scaler()
        # Dropout draws from torch's global generator: seed it so a fresh run is reproducible
        # (a resume replaces this with the checkpoint's saved state).
        torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank)
        self.options = StepOptions(
            label_smoothing=cfg.label_smoothing,
            distill_weight=cfg.distill_weight,
            autocast=self._autocast,
            scaler=self.scaler,
            channels_last=cfg.channels_last,
            sample_scores=sampler.observes,
        )

    @classmethod
    def for_run(
        cls, cfg: TrainConfig, run: RunDir, *, device: torch.device, dist: DistContext,
        resume: bool, evaluate: bool,
    ) -> OnceForAllTrainer:
        if cfg.few_shot is not None and dist.world_size > 1:
            # not yet checked with several processes: each rank would have to make the same split
            raise ConfigError("--few-shot: expected one process, got a torchrun job of "
                              f"{dist.world_size}; run it without torchrun")
        splits = load_dataset(
            cfg.dataset,
            data_dir=None if cfg.data_dir is None else Path(cfg.data_dir),
            image_size=cfg.image_size,
            seed=cfg.seed,
        )
        space = build_space(cfg, splits)
        torch.manual_seed(cfg.seed)  # any initialisation that draws from torch's global RNG
        net = space.build_supernet().to(device)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        loader = BatchLoader.for_splits(
            splits, "train", batch_size=cfg.batch_size, device=device, seed=cfg.seed, train=True
        )
        sampler = make_sampler(
            cfg.sampler, space, resolutions=cfg.resolutions, seed=cfg.seed,
            bins=cfg.complexity_bins, epochs=cfg.epochs,
        )
        return cls(net, loader, cfg, sampler, space_spec=space.spec(), dist=dist,
                   splits=splits if evaluate else None, run=run)

    @classmethod
    def check_distributed(cls, cfg: TrainConfig, dist: DistContext) -> None:
        """Runs under torchrun: gradients are averaged over the ranks (the batch is checked once
        the dataset is loaded)."""

    # -- set-up ---------------------------------------------------------------------------
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

    @property
    def phases(self) -> Sequence[Phase]:
        return tuple(Phase(p.name, p.epochs) for p in self.phase_configs)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def space_spec(self) -> dict[str, Any]:
        return self._space_spec

    def lr(self) -> float:
        assert self.optimizer is not None
        return float(self.optimizer.param_groups[0]["lr"])

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.optimizer is not None and self.scheduler is not None
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "optimizer_phase": self._phase,
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
            "sampler": self.sampler.state_dict(),
            "few_shot": None if self.few_shot is None else json.dumps(self.few_shot),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("few_shot") is not None and self.few_shot is None:
            record = json.loads(state["few_shot"])  # rebuild the sub-supernets, then load them
            self._install(Split.from_dict(record["split"], self.net.space), record)
        self.net.load_state_dict(state["model"])
        if state.get("teacher") is not None:
            self.teacher = make_teacher(self.net, self.sampler.largest())
            self.teacher.load_state_dict(state["teacher"])
        self.sampler.load_state_dict(state["sampler"])
        self._pending = state

    # -- hooks ----------------------------------------------------------------------------
    def start(self, *, resumed_at: int | None) -> None:
        # a collective, so not in the constructor, which may still fail on one rank only
        self.dist.replicate(self.net)

    def begin_phase(self, index: int, *, fresh: bool) -> None:
        phase = self.phase_configs[index]
        self._phase = index
        if fresh:
            # Only on a fresh phase start: a checkpoint inside the phase already holds the
            # re-sorted weights and the teacher.
            if phase.shrinks_channels:
                self.net.reorganize_channels()
            if needs_teacher(self.phase_configs, index) and self.teacher is None:
                self.teacher = make_teacher(self.net, self.sampler.largest())
        self.optimizer, self.scheduler = self._build_optimizer()
        pending, self._pending = self._pending, None
        if pending is not None and pending.get("optimizer_phase") == index and not fresh:
            self.optimizer.load_state_dict(pending["optimizer"])
            self.scheduler.load_state_dict(pending["scheduler"])
            if self.scaler is not None and pending.get("scaler") is not None:
                self.scaler.load_state_dict(pending["scaler"])

    def _build_optimizer(
        self,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        phase = self.phase_configs[self._phase]
        steps = phase.epochs * len(self.loader)
        return build_optimizer(self.net, self.cfg, phase, steps=steps,
                               steps_per_epoch=len(self.loader))

    # -- few-shot NAS ---------------------------------------------------------------------
    def _split_due(self, step: int) -> bool:
        k = self.cfg.few_shot
        return k is not None and self.few_shot is None and \
            step == self.cfg.split_epoch * len(self.loader)

    def _split(self, step: int) -> None:
        """Split the supernet into `cfg.few_shot` sub-supernets that continue its training."""
        assert self.cfg.few_shot is not None
        assert self.optimizer is not None and self.scheduler is not None
        count = self.cfg.few_shot_batches or DEFAULT_BATCHES
        batches = list(itertools.islice(self.loader.epoch(self.cfg.split_epoch), count))
        decision = choose_split(self.net, batches, self.cfg.few_shot, seed=self.cfg.seed)
        base, optimizer, scheduler = self.net, self.optimizer, self.scheduler
        self._install(decision.split, decision.record(step))
        assert isinstance(self.net, FewShotSupernet)
        self.optimizer, self.scheduler = self._build_optimizer()
        inherit_optimizer(optimizer, self.optimizer, base, self.net)
        self.scheduler.load_state_dict(scheduler.state_dict())
        logger.info("few-shot split at step %d: %s", step, groups_text(decision.split))

    def _install(self, split: Split, record: dict[str, Any]) -> None:
        self.net = FewShotSupernet(self.net, split)
        self.few_shot = record
        if self.run is not None and self.dist.is_main:
            atomic_write_json(self.run.supernet_dir / FEW_SHOT_FILE, record)

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        if not self.sampler.observes:
            return self.loader.epoch(epoch, start_batch=start_batch)
        return _with_ids(self.loader, epoch, start_batch)

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        return self.sampler.end_epoch(epoch)

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        if self._split_due(step):
            self._split(step)
        assert self.optimizer is not None and self.scheduler is not None
        images, labels = batch[0], batch[1]
        spec = step_spec(
            self.phase_configs[self._phase],
            self.sampler,
            step_rng(self.cfg.seed, step),
            num_random=self.cfg.num_random,
            teacher=self.teacher,
        )
        images, labels = self.dist.shard(images, labels)
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        result = train_step(self.net, self.net, images, labels, spec, self.options)
        self.dist.average_gradients(self.net)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = None
        if self.cfg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        if self.sampler.observes:
            self._observe(spec, norm, batch, result)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return StepOutput(
            loss=result.loss,
            images=int(batch[0].shape[0]),  # the global batch: every rank trains a slice of it
            metrics=step_metrics(result),
            acc=accuracy(result, "largest"),
            acc_smallest=accuracy(result, "smallest"),
        )

    def _observe(
        self, spec: StepSpec, norm: torch.Tensor | None, batch: Any, result: StepResult
    ) -> None:
        """Tell an importance sampler the step's gradient norm (before clipping) and scores."""
        if norm is None:
            norm = torch.nn.utils.get_total_norm(
                [p.grad for p in self.net.parameters() if p.grad is not None])
        archs = [arch for role, arch in spec.subnets if role not in ("largest", "smallest")]
        self.sampler.observe_step(archs, float(norm), batch[2], result.sample_scores)

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Write `supernet/weights.safetensors` and measure the endpoints' val accuracy."""
        if self.run is not None:
            save_weights(self.run, self.net, space_spec=self._space_spec,
                         train_config=config_to_dict(self.cfg))
        val = {} if self.splits is None else evaluate_endpoints(
            self.net, self.splits, self.cfg, device=self.device)
        if self.few_shot is None:
            return {"val": val}
        return {"val": val, "few_shot": self.few_shot["split"]}


def _with_ids(
    loader: BatchLoader, epoch: int, start_batch: int
) -> Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The loader's batches with the split indices of their images (same order)."""
    order = loader.order(epoch)
    for index, (images, labels) in enumerate(loader.epoch(epoch, start_batch=start_batch),
                                             start_batch):
        yield images, labels, order[index * loader.batch_size:(index + 1) * loader.batch_size]


class SupernetTraining:
    """An already built supernet, loader and sampler trained in the loop.

    `train_run` builds everything from a `TrainConfig`; scripts and tests that bring their own
    network use this. `restore(state)` continues from a checkpoint `load_checkpoint` read.
    """

    def __init__(
        self, *args: Any, checkpoint_file: Path, metrics_file: Path,
        on_step: Callable[[StepLog], None] | None = None, **kwargs: Any,
    ) -> None:
        """Args: those of `OnceForAllTrainer`, the loop's two files and a progress callback."""
        self.trainer = OnceForAllTrainer(*args, **kwargs)
        self.loop = TrainingLoop(self.trainer, checkpoint_file.parent,
                                 options=LoopOptions.of(self.trainer.config),
                                 dist=self.trainer.dist, on_step=on_step,
                                 log_name=metrics_file.name)
        self.metrics_file = metrics_file
        self._state: dict[str, Any] | None = None

    @property
    def net(self) -> Supernet:
        return self.trainer.net  # a few-shot split replaces it
    @property
    def teacher(self) -> Supernet | None:
        return self.trainer.teacher

    @property
    def total_steps(self) -> int:
        return self.loop.total_steps

    def restore(self, state: dict[str, Any]) -> None:
        self._state = state

    def run(self) -> LoopResult:
        return self.loop.run(self._state)


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
    if "resolutions" not in accepted and cfg.resolutions != TrainConfig().resolutions:
        # subnets of such a space all take `image_size` inputs: nothing would use the choice
        logger.warning("space %s has no elastic resolution; --resolutions is ignored", cfg.space)
    return create_offered_space(cfg.space, offered, parse_space_options(cfg.space_options))


def evaluate_endpoints(
    net: Supernet, splits: DatasetSplits, cfg: TrainConfig, *, device: torch.device
) -> dict[str, dict[str, float]]:
    """Val top-1/loss of the largest and smallest subnets after BN recalibration.

    `evaluate_subnet` recalibrates an extracted copy, so the supernet's own batch-norm
    statistics (saved weights, a later resume) are untouched.
    """
    from nas.supernet.evaluate import evaluate_subnet

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


_SAMPLERS = (PadaSampler,)  # imported for `--sampler pada` (it registers itself)

__all__ = ["OnceForAllTrainer", "SupernetTraining", "build_space", "evaluate_endpoints"]
