"""Train a genotype's evaluation network from scratch with the DARTS recipe.

SGD with momentum and a per-epoch cosine schedule, cutout, drop-path raised linearly over the
epochs, the auxiliary head (weight 0.4) and gradient clipping, as in the DARTS repository's
`train.py`. The run folder gets `genotype.json`, `train/ckpt.pt` (full state, loaded with
`weights_only=True`), `train/weights.safetensors`, `train/metrics.jsonl` and
`train/summary.json`; the manifest records the space (with the evaluation width and depth), so
the network can be rebuilt with `DartsSpace(**kwargs).build_network(genotype)`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nas.artifacts import RunDir, append_jsonl, atomic_save_with, atomic_write_json
from nas.config import config_to_dict
from nas.data import BatchLoader, DatasetSplits
from nas.errors import ConfigError
from nas.train.checkpoint import load_resumable_state
from search_spaces.darts.genotypes import genotype_string, load_genotype_argument
from search_spaces.darts.network import NetworkCIFAR, count_parameters
from search_spaces.darts.ops import init_weights
from search_spaces.darts.space import DartsSpace

logger = logging.getLogger(__name__)
RESUME_KEYS = ("genotype", "dataset", "init_channels", "layers", "epochs", "batch_size", "seed")


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
    log_every: int = 10
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "init_channels"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ConfigError(f"drop_path: expected a probability in [0, 1), got {self.drop_path}")
        if self.cutout < 0:
            raise ConfigError(f"cutout: expected a size >= 0, got {self.cutout}")


OnStep = Callable[[dict[str, Any]], None]


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


class _EvalRun:
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
        self.epoch = self.batch = self.step = 0

    def lr_at(self, epoch: int) -> float:
        c = self.config
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * epoch / c.epochs))

    def save(self) -> None:
        state = {"state_dict": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "epoch": self.epoch, "batch": self.batch, "step": self.step,
                 "config": config_to_dict(self.config), "genotype": self.genotype,
                 "space": self.space.spec()}
        atomic_save_with(self.run.sub("train", "ckpt.pt"), lambda p: torch.save(state, p))

    def load(self) -> None:
        state = load_resumable_state(
            self.run.sub("train", "ckpt.pt"), map_location=self.device,
            config=config_to_dict(self.config), resume_keys=RESUME_KEYS,
        )
        self.net.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        config = self.config
        generator = _step_generator(config.seed, self.step)
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
        return {"loss": float(loss.detach()), "acc": accuracy}


def _run_epoch(job: _EvalRun, on_step: OnStep | None) -> bool:
    config = job.config
    lr = job.lr_at(job.epoch)
    for group in job.optimizer.param_groups:
        group["lr"] = lr
    job.net.drop_path_prob = config.drop_path * job.epoch / config.epochs
    job.net.train()
    started = time.perf_counter()
    for images, labels in job.loader.epoch(job.epoch, start_batch=job.batch):
        if config.max_steps is not None and job.step >= config.max_steps:
            return False
        record: dict[str, Any] = job.train_step(images, labels)
        job.batch += 1
        job.step += 1
        record.update(epoch=job.epoch, batch=job.batch, step=job.step, lr=lr,
                      seconds=time.perf_counter() - started,
                      total_steps=len(job.loader) * config.epochs)
        if job.step % config.log_every == 0:
            append_jsonl(job.run.sub("train", "metrics.jsonl"), record)
        if on_step is not None:
            on_step(record)
        if job.step % config.checkpoint_every == 0:
            job.save()
    return True


def run_eval_training(
    config: EvalTrainConfig, run: RunDir, *, splits: DatasetSplits,
    device: torch.device | str, on_step: OnStep | None = None, resume: bool = False,
) -> dict[str, Any]:
    """Train the evaluation network of `config.genotype`; returns a JSON-able summary."""
    job = _EvalRun(config, run, splits, torch.device(device))
    if resume:
        job.load()
    run.update_manifest(space=job.space.spec())
    atomic_write_json(run.sub("genotype.json"), job.genotype)
    val_loader = BatchLoader.for_splits(splits, "val", batch_size=config.eval_batch_size,
                                        device=job.device)
    completed = True
    while job.epoch < config.epochs:
        completed = _run_epoch(job, on_step)
        if not completed:
            break
        val_acc = evaluate_network(job.net, val_loader)
        append_jsonl(run.sub("train", "metrics.jsonl"),
                     {"epoch": job.epoch, "step": job.step, "val_acc": val_acc})
        job.epoch, job.batch = job.epoch + 1, 0
        job.save()
    job.save()
    return _finish(job, completed)


def _finish(job: _EvalRun, completed: bool) -> dict[str, Any]:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in job.net.state_dict().items()}
    atomic_save_with(job.run.sub("train", "weights.safetensors"),
                     lambda p: save_file(state, p))
    test_loader = BatchLoader.for_splits(job.splits, "test",
                                         batch_size=job.config.eval_batch_size, device=job.device)
    summary: dict[str, Any] = {
        "completed": completed, "epochs_done": job.epoch, "steps": job.step,
        "val_acc": evaluate_network(job.net, BatchLoader.for_splits(
            job.splits, "val", batch_size=job.config.eval_batch_size, device=job.device)),
        "test_acc": evaluate_network(job.net, test_loader),
        "params": count_parameters(job.net), "macs": job.space.complexity(job.genotype)["macs"],
        "genotype": job.genotype, "genotype_string": genotype_string(job.genotype),
    }
    atomic_write_json(job.run.sub("train", "summary.json"), summary)
    return summary
