"""One network trained alone with SGD and a cosine learning rate: the shared recipe of
`nas train --arch` (a subnet from scratch, nas/train/subnet.py) and `nas finetune` (an exported
subnet, which adds distillation).

SGD with Nesterov momentum, the learning rate decayed from `lr` to zero on a cosine over every
step of the run, label smoothing, inputs resized to the subnet's resolution and validation
top-1 after every epoch. DARTS genotypes keep their own recipe (nas/train/darts_eval.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.artifacts import atomic_save_with
from nas.data import BatchLoader, DatasetSplits
from nas.supernet.evaluate import resize_to
from nas.train.trainer import Ratio, SingleNetTrainer, StepOutput

STAGE = "train"  # the run stage of `nas train` (a genotype's or a subnet's network)


class CosineOptions(Protocol):
    """The options the recipe reads (`SubnetConfig`, `FinetuneConfig`)."""

    @property
    def epochs(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def label_smoothing(self) -> float: ...
    @property
    def seed(self) -> int: ...


def top1_of(
    model: nn.Module, splits: DatasetSplits, which: str, *, resolution: int | None,
    device: torch.device | str, batch_size: int = 256,
) -> float:
    """Top-1 accuracy (percent) of `model` on `splits.<which>` at `resolution`; eval mode."""
    loader = BatchLoader.for_splits(splits, which, batch_size=batch_size, device=device)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader.epoch(0):
            logits = model(resize_to(images, resolution))
            correct += int((logits.argmax(1) == labels).sum())
            total += int(labels.numel())
    return 100.0 * correct / max(total, 1)


def save_network(model: nn.Module, path: Path) -> None:
    """The model's state dict as safetensors (CPU, contiguous), written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_with(path, lambda tmp: save_file(state, tmp))


class StandaloneTrainer(SingleNetTrainer):
    """Trains `net` with the recipe of the module docstring; subclasses may add a loss term.

    Args:
        net: the network, on its device.
        loader: shuffled, augmented training batches.
        splits: the dataset (validation after every epoch).
        config: the recipe's options.
        resolution: input side the network runs at (None: the images' own).
    """

    config: CosineOptions

    def __init__(
        self, net: nn.Module, loader: BatchLoader, splits: DatasetSplits, config: CosineOptions,
        resolution: int | None,
    ) -> None:
        self.net, self.loader, self.splits = net, loader, splits
        self.config, self.resolution = config, resolution
        self.optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                                         nesterov=True, weight_decay=config.weight_decay)
        self.total_steps = config.epochs * len(loader)
        self._outer_rng: Tensor | None = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def extra_loss(self, images: Tensor, logits: Tensor) -> Tensor | None:
        """A term added to the step's loss (default: none; fine-tuning distils here)."""
        return None

    def begin_epoch(self, epoch: int, *, start_batch: int) -> None:
        self.net.train()
        if start_batch == 0:
            # dropout draws from torch's global generator: seed it per epoch (a resumed run
            # repeats exactly) and give the caller's state back at the epoch's end
            self._outer_rng = torch.get_rng_state()
            torch.manual_seed(self.config.seed * 100_003 + epoch)

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        return self.loader.epoch(epoch, start_batch=start_batch)

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        cfg, (images, labels) = self.config, batch
        for group in self.optimizer.param_groups:  # cosine decay to zero, set per step
            group["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * step / self.total_steps))
        images = resize_to(images, self.resolution)
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
        extra = self.extra_loss(images, logits)
        if extra is not None:
            loss = loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        seen, correct = int(labels.numel()), int((logits.argmax(1) == labels).sum())
        value = float(loss.detach())
        metrics = {"loss": Ratio(value * seen, seen), "top1": Ratio(100.0 * correct, seen)}
        return StepOutput(loss=value, images=seen, metrics=metrics, acc=correct / max(seen, 1))

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        if self._outer_rng is not None:
            torch.set_rng_state(self._outer_rng)
            self._outer_rng = None
        val = self.top1("val")
        return {"epoch": epoch + 1, "epochs": self.config.epochs, "loss": means.get("loss", 0.0),
                "train_top1": means.get("top1", 0.0), "val_top1": val,
                "seconds": means.get("seconds", 0.0)}

    def top1(self, which: str) -> float:
        """Top-1 (percent) of the network on a split; leaves it in eval mode."""
        device = next(self.net.parameters()).device
        return top1_of(self.net, self.splits, which, resolution=self.resolution, device=device)


__all__ = ["STAGE", "CosineOptions", "StandaloneTrainer", "save_network", "top1_of"]
