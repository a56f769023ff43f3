"""One in-memory representation for every dataset, and a batch loader that augments on device.

Images are kept as uint8 (N, C, H, W) tensors on the CPU (CIFAR-10's 50,000 images take 150 MB);
each batch is moved to the training device, converted to float and normalised there, and
augmented there (random crop with padding, horizontal flip), so data loading needs no workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import nas.data.loaders  # noqa: F401  (the built-in datasets register on import)
from nas.data._registry import DATASETS
from nas.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """Images (uint8, N x C x H x W, CPU) and their int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset split into train / validation / test.

    Training never sees `val`: search scores subnets on it. `test` is for final reports.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool  # whether a horizontal flip keeps the label meaningful (not for digits)

    def summary(self) -> dict[str, object]:
        return {
            "dataset": self.name,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "image_size": self.image_size,
        }


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of uint8 N x C x H x W images to size x size (antialiased to shrink)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    # chunks keep peak memory low for large sets
    for chunk in torch.split(images, 4096):
        resized = F.interpolate(
            chunk.float(),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=size < chunk.shape[-1],
        )
        out.append(resized.round().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def split_indices(
    n: int, *, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test index arrays, a pure function of (n, seed, fractions)."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            "expected 0 < val_fraction, 0 <= test_fraction and val_fraction + test_fraction < 1, "
            f"got val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    n_test = round(n * test_fraction)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    as_float = images.float().div_(255)
    mean = as_float.mean(dim=(0, 2, 3))
    std = as_float.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def load_dataset(
    name: str = "digits",
    *,
    data_dir: Path | None = None,
    image_size: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    num_classes: int | None = None,
    synthetic_size: int = 512,
) -> DatasetSplits:
    """Load dataset `name`, resize it to `image_size` and split it deterministically from `seed`.

    Datasets with an official test set (CIFAR) keep it as `test`; their training set is split
    into train and val. The others are split three ways. Normalisation statistics come from the
    training split only.

    Args:
        name: digits (default, bundled with scikit-learn), synthetic, cifar10, cifar100,
                imagefolder.
        data_dir: folder of the dataset (cifar*, imagefolder).
        image_size: side length to resize to (default: the dataset's own; digits: 32, upsampled
                from 8 so that convolutional stems have room to downsample).
        seed: decides the split.
        num_classes, synthetic_size: for the synthetic dataset.
    """
    if image_size is not None and not 4 <= image_size <= 1024:
        raise ConfigError(f"expected an image size between 4 and 1024 pixels, got {image_size}")
    loader = DATASETS.get(name)
    raw = loader(
        data_dir=data_dir,
        image_size=image_size,
        num_classes=num_classes,
        synthetic_size=synthetic_size,
        seed=seed,
    )
    size = image_size or raw.default_image_size or int(raw.images.shape[-1])
    images = resize_uint8(raw.images, size)
    if raw.test_images is not None and raw.test_labels is not None:
        train_idx, val_idx, _ = split_indices(
            len(images), seed=seed, val_fraction=val_fraction, test_fraction=0.0
        )
        test = Split(resize_uint8(raw.test_images, size), raw.test_labels)
    else:
        train_idx, val_idx, test_idx = split_indices(
            len(images), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
        )
        test = Split(images[test_idx], raw.labels[test_idx])
    train = Split(images[train_idx], raw.labels[train_idx])
    val = Split(images[val_idx], raw.labels[val_idx])
    mean, std = _channel_stats(train.images)
    return DatasetSplits(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=raw.num_classes,
        channels=int(images.shape[1]),
        image_size=size,
        mean=mean,
        std=std,
        hflip=raw.hflip,
    )


class BatchLoader:
    """Batches of one split, normalised (and optionally augmented) on `device`.

    The order of epoch `e` is a pure function of `(seed, e)`, so a resumed run that starts at
    `(epoch, start_batch)` sees exactly the batches an uninterrupted run would have seen.
    Augmentation randomness is drawn from a generator seeded the same way per batch.
    """

    def __init__(
        self,
        split: Split,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        shuffle: bool,
        seed: int = 0,
        augment: bool = False,
        hflip: bool = False,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"expected a batch size >= 1, got {batch_size}")
        self.split = split
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.hflip = hflip
        self.drop_last = drop_last and len(split) >= batch_size
        shape = (1, -1, 1, 1)
        self._mean = torch.tensor(mean, device=self.device).view(shape) * 255
        self._std = torch.tensor(std, device=self.device).view(shape) * 255
        self._pinned = self.device.type == "cuda"
        # Replaces the shuffled order of an epoch (importance sampling of data, PA&DA): any
        # `len(split)`-long index tensor, a pure function of the epoch and the caller's state.
        self.order_fn: Callable[[int], torch.Tensor] | None = None

    @classmethod
    def for_splits(
        cls,
        splits: DatasetSplits,
        which: str,
        *,
        batch_size: int,
        device: torch.device | str,
        seed: int = 0,
        train: bool = False,
    ) -> BatchLoader:
        """A loader over `splits.<which>`; `train=True` shuffles, augments, drops a short batch."""
        split = {"train": splits.train, "val": splits.val, "test": splits.test}.get(which)
        if split is None:
            raise ConfigError(f"expected split train, val or test, got '{which}'")
        return cls(
            split,
            batch_size=batch_size,
            device=device,
            mean=splits.mean,
            std=splits.std,
            shuffle=train,
            seed=seed,
            augment=train,
            hflip=train and splits.hflip,
            drop_last=train,
        )

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The indices into the split that epoch `epoch` visits, in order."""
        if self.order_fn is not None:
            return self.order_fn(epoch)
        return self.shuffled_order(epoch)

    def shuffled_order(self, epoch: int) -> torch.Tensor:
        """The loader's own order of epoch `epoch`: a permutation from (seed, epoch)."""
        if not self.shuffle:
            return torch.arange(len(self.split))
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        return torch.randperm(len(self.split), generator=generator)

    def epoch(
        self, epoch: int, *, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of `epoch`, starting at batch index `start_batch`."""
        order = self.order(epoch)
        for index in range(start_batch, len(self)):
            ids = order[index * self.batch_size : (index + 1) * self.batch_size]
            images = self.split.images[ids]
            labels = self.split.labels[ids]
            if self._pinned:
                images, labels = images.pin_memory(), labels.pin_memory()
            images = images.to(self.device, non_blocking=True).float()
            labels = labels.to(self.device, non_blocking=True)
            if self.augment:
                generator = torch.Generator().manual_seed(_mix(self.seed, epoch, index))
                images = augment_batch(images, generator, hflip=self.hflip)
            yield (images - self._mean) / self._std, labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)


def _mix(*values: int) -> int:
    """A 63-bit seed from several ints (so (seed, epoch, batch) streams do not collide)."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, dtype=np.uint64)[0] >> 1)


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, *, hflip: bool
) -> torch.Tensor:
    """Random crop with zero padding of size/8 (4 px at 32 px) and, if `hflip`, random flips.

    Random numbers come from a CPU generator so results do not depend on the device.
    """
    n, _, height, width = images.shape
    pad = max(1, height // 8)
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    rows = dy.view(n, 1) + torch.arange(height, device=images.device).view(1, height)
    cols = dx.view(n, 1) + torch.arange(width, device=images.device).view(1, width)
    if hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(images.device).view(n, 1)
        cols = torch.where(flip, cols.flip(1), cols)
    batch_index = torch.arange(n, device=images.device).view(n, 1, 1)
    cropped = padded.permute(0, 2, 3, 1)[
        batch_index, rows.view(n, height, 1), cols.view(n, 1, width)
    ]
    return cropped.permute(0, 3, 1, 2).contiguous()
