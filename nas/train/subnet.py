"""Any subnet of any space trained alone from scratch: `nas train --arch` and the ground truth
of `nas rank --standalone`.

The network is `space.build_network(arch)` (the subnet extracted from a freshly initialised
supernet unless the space builds its own), initialised from the seed, trained with the
stand-alone recipe (nas/train/standalone.py) in the shared loop, so a killed training resumes
exactly. The training folder (`RunLayout.train_dir`: `runs/NAME/train/` for `nas train`) holds
`checkpoint.pt`, `metrics.jsonl` (one record per epoch with validation top-1), `arch.json` (the
canonical subnet), and at the end `weights.safetensors` and `summary.json`; a `nas train` run
also records the space in its manifest, so `nas export --run NAME` rebuilds and exports it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.arch import arch_id, canonical_json
from nas.artifacts import RunDir, RunLayout, atomic_write_json
from nas.config import check_finite, config_to_dict
from nas.data import BatchLoader, DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.locks import stage_lock
from nas.train.checkpoint import DEFAULT_CHECKPOINT_MINUTES
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.stage import recorded_stage
from nas.train.standalone import STAGE, StandaloneTrainer, save_network
from nas.train.trainer import LoopResult
from search_spaces import create_sized_space, parse_space_options
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"  # beside the weights in the training folder


@dataclass(frozen=True)
class SubnetConfig:
    """Options of `nas train --arch` (flags > --config file > these defaults)."""

    arch: str = "max"  # max, min, inline JSON or a JSON file, in any form the space reads
    space: str = "ofa-mbv3"
    space_options: tuple[str, ...] = ()  # KEY=VALUE texts passed to the space
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 32
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1  # peak, decayed to zero on a cosine over all steps
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    seed: int = 0  # data split, batch order, initial weights
    device: str = "cpu"
    max_steps: int | None = None  # stop early (quick runs); the schedule ignores it
    checkpoint_every: int = 100
    # also checkpoint when this long passed since the last
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES
    log_every: int = 10
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "space_options", tuple(str(o) for o in self.space_options))
        check_finite(self)  # NaN passes every comparison below
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "eval_batch_size"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: expected a positive integer, got {self.max_steps}")
        if self.lr <= 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")

    @classmethod
    def like_run(cls, train_config: Mapping[str, Any], **overrides: Any) -> SubnetConfig:
        """The options of a supernet run's training (data, batch size, lr, seed ...) that this
        recipe shares, with `overrides` on top."""
        names = {f.name for f in dataclasses.fields(cls)}
        shared = {k: v for k, v in train_config.items() if k in names and v is not None}
        return cls(**{**shared, **overrides})


class SubnetTrainer(StandaloneTrainer):
    """Trains `space.build_network(arch)` alone; `config.arch` is the canonical arch's JSON."""

    kind = "subnet"
    resume_keys = ("arch", "space", "space_options", "dataset", "data_dir", "image_size",
                   "epochs", "batch_size", "lr", "momentum", "weight_decay", "label_smoothing",
                   "seed")
    config: SubnetConfig

    def __init__(self, config: SubnetConfig, space: SearchSpace, arch: Mapping[str, Any],
                 splits: DatasetSplits, layout: RunLayout) -> None:
        device = torch.device(config.device)
        with torch.random.fork_rng(devices=[]):  # the initial weights come from the seed only
            torch.manual_seed(config.seed)
            net = space.build_network(arch).to(device)
        loader = BatchLoader.for_splits(splits, "train", batch_size=config.batch_size,
                                        device=device, seed=config.seed, train=True)
        super().__init__(net, loader, splits, config, space.input_resolution(arch))
        self.space, self.arch, self.layout = space, dict(arch), layout

    def space_spec(self) -> dict[str, Any]:
        return self.space.spec()

    def start(self, *, resumed_at: int | None) -> None:
        atomic_write_json(self.layout.trained_arch, self.arch)

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Write the weights and `summary.json` (val and test top-1 as fractions)."""
        save_network(self.net, self.layout.trained_weights)
        summary: dict[str, Any] = {
            "completed": result.completed, "epochs_done": result.epochs_done,
            "steps": result.steps, "val_acc": self.top1("val") / 100.0,
            "test_acc": self.top1("test") / 100.0, **self.space.complexity(self.arch),
            "arch": self.arch, "arch_id": arch_id(self.arch),
        }
        atomic_write_json(self.layout.train_dir / SUMMARY_FILE, summary)
        return summary


def prepare_subnet(
    space: SearchSpace, arch: Mapping[str, Any], config: SubnetConfig, layout: RunLayout, *,
    splits: DatasetSplits, resume: bool | None, label: str,
    on_step: Callable[[StepLog], None] | None = None,
) -> tuple[SubnetTrainer, TrainingLoop, dict[str, Any] | None]:
    """The trainer, its loop in `layout.train_dir` and the checkpoint to continue from,
    refusing unsafe starts (see `TrainingLoop.load`) before anything is written."""
    canonical = space.normalize(arch)
    config = dataclasses.replace(config, arch=canonical_json(canonical))
    trainer = SubnetTrainer(config, space, canonical, splits, layout)
    loop = TrainingLoop(trainer, layout.train_dir, options=LoopOptions.of(config),
                        on_step=on_step, label=label)
    return trainer, loop, loop.load(resume=resume, refuse=(layout.trained_weights,))


def train_arch(
    config: SubnetConfig, run: RunDir, *, resume: bool = False,
    on_step: Callable[[StepLog], None] | None = None, wait: bool = False,
) -> dict[str, Any]:
    """`nas train --arch`: train `config.arch` of `config.space` into `run` (its "train" stage),
    one process at a time (`wait`: queue behind another instead of failing).

    Returns:
        The summary: `{"completed", "epochs_done", "steps", "val_acc", "test_acc", "params",
        "macs", "arch", "arch_id"}` (accuracies as fractions).
    """
    with stage_lock(run.path, STAGE, wait=wait, hint="or train another --run"):
        return _train_arch(config, run, resume, on_step)


def _train_arch(
    config: SubnetConfig, run: RunDir, resume: bool, on_step: Callable[[StepLog], None] | None,
) -> dict[str, Any]:
    splits = load_dataset(config.dataset, data_dir=Path(config.data_dir) if config.data_dir
                          else None, image_size=config.image_size, seed=config.seed)
    space = create_sized_space(config.space, num_classes=splits.num_classes,
                               in_channels=splits.channels, image_size=splits.image_size,
                               options=parse_space_options(config.space_options))
    with run.kept_only_if_used():  # a refused start leaves no empty run folder
        arch = space.subnet_from_text(config.arch)
        trainer, loop, state = prepare_subnet(space, arch, config, run, splits=splits,
                                              resume=resume, label=f"run '{run.name}'",
                                              on_step=on_step)
    with recorded_stage(run, STAGE, config=config_to_dict(trainer.config), seed=config.seed,
                        device=config.device) as recorded:
        run.update_manifest(space=space.spec())
        summary = trainer.finish(loop.run(state))
        recorded.update(summary)
    return summary


def train_for_ranking(
    space: SearchSpace, arch: Mapping[str, Any], layout: RunLayout, *, splits: DatasetSplits,
    run_config: Mapping[str, Any], epochs: int | None, max_steps: int | None, device: str,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Test top-1 (percent) of `arch` trained alone with a supernet run's data and options.

    What `nas rank --standalone` measures its ground truth with: `layout.train_dir` holds the
    training (continued from its checkpoint when there is one), `epochs` defaults to the
    run's.

    Args:
        progress: called with (step, total steps) after every step.
    """
    overrides: dict[str, Any] = {"device": device, "max_steps": max_steps}
    if epochs is not None:
        overrides["epochs"] = epochs
    config = SubnetConfig.like_run(run_config, space=space.name, **overrides)

    def on_step(log: StepLog) -> None:
        if progress is not None:
            progress(log.step, log.total_steps)

    trainer, loop, state = prepare_subnet(space, arch, config, layout, splits=splits,
                                          resume=None, label=f"the subnet in {layout.path}",
                                          on_step=on_step)
    return 100.0 * float(trainer.finish(loop.run(state))["test_acc"])


__all__ = ["SubnetConfig", "SubnetTrainer", "prepare_subnet", "train_arch", "train_for_ranking"]
