"""Accuracy of one subnet of a supernet: extract, recalibrate BN, evaluate on a split.

Also the pieces every consumer of a trained supernet shares: the calibration images (the same
for a given batch size and seed, so search, `nas eval` and export measure the same subnet the
same way), resizing to a subnet's resolution and reading a subnet from the command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nas.arch import Arch
from nas.data import BatchLoader, DatasetSplits
from nas.errors import ConfigError
from nas.layers.fuse import fuse_conv_bn
from nas.supernet.base import Supernet
from nas.supernet.bn import recalibrate_bn

if TYPE_CHECKING:
    pass

SPLITS = ("train", "val", "test")


def resize_to(images: Tensor, resolution: int | None) -> Tensor:
    """Bilinearly resize a batch to `resolution` pixels per side (unchanged if equal or None)."""
    if resolution is None or images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(
        images, size=(resolution, resolution), mode="bilinear", align_corners=False
    )


def calibration_images(
    splits: DatasetSplits,
    *,
    batch_size: int,
    device: torch.device | str,
    seed: int,
    resolution: int | None,
) -> Iterator[Tensor]:
    """Shuffled, un-augmented training images at `resolution` (the order depends on `seed`)."""
    loader = BatchLoader(
        splits.train,
        batch_size=batch_size,
        device=device,
        mean=splits.mean,
        std=splits.std,
        shuffle=True,
        seed=seed,
    )
    return (resize_to(images, resolution) for images, _ in loader.epoch(0))


def activate_and_recalibrate(
    supernet: Supernet,
    arch: Arch,
    splits: DatasetSplits,
    *,
    num_batches: int,
    batch_size: int,
    seed: int,
    device: torch.device | str,
    resolution: int | None = None,
) -> Supernet:
    """Move `supernet` to `device`, activate `arch` and re-estimate its BN statistics in place.

    Shared weights are trained for many subnets, so the statistics stored in the supernet fit
    none of them exactly (OFA, section 3.3). The images are `calibration_images` at
    `resolution` (default: the arch's own), the ones `evaluate_subnet` calibrates with for the
    same batch size and seed, so a subnet exported or distilled from is the one search measured.

    Returns:
        `supernet` itself, with `arch` active and its train/eval mode unchanged.
    """
    supernet.to(device)
    supernet.set_active(arch)
    side = supernet.input_resolution(arch) if resolution is None else resolution
    images = calibration_images(
        splits, batch_size=batch_size, device=device, seed=seed, resolution=side
    )
    recalibrate_bn(supernet, images, num_batches=num_batches)
    return supernet


@torch.no_grad()
def evaluate_subnet(
    supernet: Supernet,
    arch: Arch,
    splits: DatasetSplits,
    *,
    split: str = "val",
    calibration_batches: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Top-1 accuracy and loss of `arch` on `splits.<split>` after BN recalibration.

    The subnet is extracted first and recalibrated on `calibration_batches` shuffled training
    batches, so the supernet's own statistics are left untouched. Images are resized to the
    arch's resolution when it differs from the dataset's image size.

    Returns:
        `{"top1": percent in [0, 100], "loss": mean cross-entropy, "n": images evaluated}`.
    """
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got '{split}'")
    arch = supernet.space.normalize(arch)
    resolution = supernet.input_resolution(arch)
    # NHWC activations: oneDNN's convolutions (depthwise above all) run ~2x faster on CPU
    layout = torch.channels_last
    subnet = supernet.extract_subnet(arch).to(device).to(memory_format=layout)  # type: ignore[call-overload]
    recalibrate_bn(
        subnet,
        (
            images.contiguous(memory_format=layout)
            for images in calibration_images(
                splits, batch_size=batch_size, device=device, seed=seed, resolution=resolution
            )
        ),
        num_batches=calibration_batches,
    )
    subnet = fuse_conv_bn(subnet)  # eval mode; BN folded into the convs: same outputs, faster
    loader = BatchLoader.for_splits(splits, split, batch_size=batch_size, device=device)
    correct, loss_sum, n = 0, 0.0, 0
    for images, labels in loader.epoch(0):
        logits = subnet(resize_to(images, resolution).contiguous(memory_format=layout))
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == labels).sum())
        n += int(labels.numel())
    if n == 0:
        raise ConfigError(
            f"split '{split}' of dataset '{splits.name}' is empty; nothing to evaluate"
        )
    return {"top1": 100.0 * correct / n, "loss": loss_sum / n, "n": n}
