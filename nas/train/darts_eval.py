"""Train a genotype's evaluation network from scratch with the DARTS recipe.

SGD with momentum and a per-epoch cosine schedule, cutout, drop-path raised linearly over the
epochs, the auxiliary head (weight 0.4) and gradient clipping, as in the DARTS repository's
`train.py`. The run folder gets `genotype.json`, `train/checkpoint.pt` (the shared loop's
checkpoint), `train/weights.safetensors`, `train/metrics.jsonl` and `train/summary.json`; the
manifest records the space (with the evaluation width and depth), so the network can be
rebuilt with `DartsSpace(**kwargs).build_network(genotype)`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nas.artifacts import RunDir, atomic_write_json
from nas.config import check_finite, config_to_dict
from nas.data import BatchLoader, DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.locks import stage_lock
from nas.train.checkpoint import DEFAULT_CHECKPOINT_MINUTES
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.stage import recorded_stage
from nas.train.standalone import STAGE, save_network
from nas.train.trainer import LoopResult, SingleNetTrainer, StepOutput
from search_spaces.darts.genotypes import genotype_string, load_genotype_argument
from search_spaces.darts.network import NetworkCIFAR, count_parameters
from search_spaces.darts.ops import init_weights
from search_spaces.darts.space import DartsSpace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalTrainConfig:
    """Options of `nas train --genotype` (DARTS' CIFAR recipe; fewer epochs by default)."""

    genotype: str = "DARTS_V2"  # published name, JSON/Genotype(...) file, or inline text
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 32
    init_channels: int = 36
    layers: int = 20
    epochs: int = 20  # DARTS trains 600 epochs on CIFAR-10
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    auxiliary: bool = True  # needs 32 px inputs (the head expects 8x8 features)
    auxiliary_weight: float = 0.4
    drop_path: float = 0.2  # final drop-path probability (raised linearly from 0)
    cutout: int = 16  # side of the cutout square in pixels; 0 disables
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None
    checkpoint_every: int = 100
    # also checkpoint when this long passed since the last
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES
    log_every: int = 10
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "init_channels"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ConfigError(f"drop_path: expected a probability in [0, 1), got {self.drop_path}")
        if self.cutout < 0:
            raise ConfigError(f"cutout: expected a size >= 0, got {self.cutout}")


def cutout(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a `size` x `size` square (clipped at the borders) at a random centre per image."""
    if size <= 0:
        return images
    n, _, h, w = images.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator).to(images.device)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator).to(images.device)
    ys = torch.arange(h, device=images.device).view(1, h, 1)
    xs = torch.arange(w, device=images.device).view(1, 1, w)
    inside = ((ys >= cy - size // 2) & (ys < cy + size // 2)
              & (xs >= cx - size // 2) & (xs < cx + size // 2))
    return images * (~inside).unsqueeze(1).to(images.dtype)


def _step_generator(seed: int, step: int) -> torch.Generator:
    # a pure function of (seed, step): a resumed run draws the same masks
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def evaluate_network(net: NetworkCIFAR, loader: BatchLoader) -> float:
    """Top-1 accuracy of `net` over one pass of `loader`."""
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader.epoch(0):
            correct += int((net(images).argmax(1) == labels).sum())
            total += len(labels)
    net.train()
    return correct / max(1, total)


class GenotypeTrainer(SingleNetTrainer):
    """Stand-alone training of a genotype's evaluation network (`nas train --genotype`)."""

    kind = "stand-alone"
    net: NetworkCIFAR
    config: EvalTrainConfig
    resume_keys = ("genotype", "dataset", "init_channels", "layers", "epochs", "batch_size",
                   "seed")

    def __init__(self, config: EvalTrainConfig, run: RunDir, splits: DatasetSplits,
                 device: torch.device) -> None:
        auxiliary = config.auxiliary and splits.image_size == 32
        if config.auxiliary and not auxiliary:
            logger.warning("auxiliary head disabled: it needs 32 px inputs, got %d px",
                           splits.image_size)
        self.config, self.run, self.splits, self.device = config, run, splits, device
        self.space = DartsSpace(init_channels=config.init_channels, layers=config.layers,
                                num_classes=splits.num_classes, in_channels=splits.channels,
                                image_size=splits.image_size, auxiliary=auxiliary)
        self.genotype = self.space.normalize(load_genotype_argument(config.genotype))
        self.net = self.space.build_network(self.genotype)
        init_weights(self.net, torch.Generator().manual_seed(config.seed))
        self.net.to(device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr,
                                         momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.loader = BatchLoader.for_splits(splits, "train", batch_size=config.batch_size,
                                             device=device, seed=config.seed, train=True)

    def lr_at(self, epoch: int) -> float:
        c = self.config
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * epoch / c.epochs))

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def space_spec(self) -> dict[str, Any]:
        return self.space.spec()

    def start(self, *, resumed_at: int | None) -> None:
        self.run.update_manifest(space=self.space.spec())
        atomic_write_json(self.run.sub("genotype.json"), self.genotype)

    def begin_epoch(self, epoch: int, *, start_batch: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(epoch)
        self.net.drop_path_prob = self.config.drop_path * epoch / self.config.epochs
        self.net.train()

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        return self.loader.epoch(epoch, start_batch=start_batch)

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        config = self.config
        images, labels = batch
        generator = _step_generator(config.seed, step)
        self.net.set_drop_path_generator(generator)
        images = cutout(images, config.cutout, generator)
        logits, aux = self.net.forward_with_aux(images)
        loss = F.cross_entropy(logits, labels)
        if aux is not None:
            loss = loss + config.auxiliary_weight * F.cross_entropy(aux, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
        self.optimizer.step()
        accuracy = float((logits.argmax(1) == labels).float().mean())
        value = float(loss.detach())
        return StepOutput(loss=value, images=int(labels.shape[0]),
                          metrics={"loss": value, "acc": accuracy}, acc=accuracy)

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        return {"val_acc": evaluate_network(self.net, self._loader("val"))}

    def _loader(self, which: str) -> BatchLoader:
        return BatchLoader.for_splits(self.splits, which, batch_size=self.config.eval_batch_size,
                                      device=self.device)

    def finish(self, result: LoopResult) -> dict[str, Any]:
        """Write `train/weights.safetensors` and `train/summary.json` (val and test top-1)."""
        save_network(self.net, self.run.trained_weights)
        summary: dict[str, Any] = {
            "completed": result.completed, "epochs_done": result.epochs_done,
            "steps": result.steps,
            "val_acc": evaluate_network(self.net, self._loader("val")),
            "test_acc": evaluate_network(self.net, self._loader("test")),
            "params": count_parameters(self.net),
            "macs": self.space.complexity(self.genotype)["macs"],
            "genotype": self.genotype, "genotype_string": genotype_string(self.genotype),
        }
        atomic_write_json(self.run.sub("train", "summary.json"), summary)
        return summary


def _loop(trainer: GenotypeTrainer, run: RunDir,
          on_step: Callable[[StepLog], None] | None) -> TrainingLoop:
    return TrainingLoop(trainer, run.train_dir, options=LoopOptions.of(trainer.config),
                        on_step=on_step, label=f"run '{run.name}'")


def run_eval_training(
    config: EvalTrainConfig, run: RunDir, *, splits: DatasetSplits,
    device: torch.device | str, on_step: Callable[[StepLog], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the evaluation network of `config.genotype`; returns a JSON-able summary."""
    trainer = GenotypeTrainer(config, run, splits, torch.device(device))
    loop = _loop(trainer, run, on_step)
    state = loop.load(resume=resume)
    return trainer.finish(loop.run(state))


def train_genotype(
    config: EvalTrainConfig, run: RunDir, *, resume: bool = False,
    on_step: Callable[[StepLog], None] | None = None, wait: bool = False,
) -> dict[str, Any]:
    """`nas train`: load the data, train into `run` (recorded as its "train" stage); one
    process at a time (`wait`: queue behind another instead of failing)."""
    with stage_lock(run.path, STAGE, wait=wait, hint="or train another --run"):
        return _train_genotype(config, run, resume, on_step)


def _train_genotype(
    config: EvalTrainConfig, run: RunDir, resume: bool,
    on_step: Callable[[StepLog], None] | None,
) -> dict[str, Any]:
    data_dir = None if config.data_dir is None else Path(config.data_dir)
    splits = load_dataset(config.dataset, data_dir=data_dir, image_size=config.image_size,
                          seed=config.seed)
    with run.kept_only_if_used():
        trainer = GenotypeTrainer(config, run, splits, torch.device(config.device))
        loop = _loop(trainer, run, on_step)
        state = loop.load(resume=resume)
    with recorded_stage(run, STAGE, config=config_to_dict(config), seed=config.seed,
                        device=config.device) as recorded:
        summary = trainer.finish(loop.run(state))
        recorded.update({k: v for k, v in summary.items() if k != "genotype_string"})
    return summary


__all__ = ["EvalTrainConfig", "GenotypeTrainer", "run_eval_training", "train_genotype"]
