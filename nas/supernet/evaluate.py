"""Accuracy of one subnet of a supernet: extract, recalibrate BN, evaluate on a split.

Also the pieces every consumer of a trained supernet shares: the calibration images (the same
for a given batch size and seed, so search, `nas eval` and export measure the same subnet the
same way), resizing to a subnet's resolution and reading a subnet from the command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nas.arch import Arch
from nas.data import BatchLoader, DatasetSplits
from nas.errors import ConfigError
from nas.layers.fuse import fuse_conv_bn
from nas.supernet.base import Supernet
from nas.supernet.bn import recalibrate_bn

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


@dataclass(frozen=True)
class EvalBatches:
    """Normalised batches at one resolution: made once, then reused for every subnet scored.

    Attributes:
        calibration: BN-recalibration inputs (`calibration_images`), channels-last.
        batches: (images, labels) of the evaluated split, resized and channels-last.
    """

    calibration: list[Tensor]
    batches: list[tuple[Tensor, Tensor]]
    split: str
    dataset: str
    calibration_batches: int  # requested (a small training split may offer fewer)


# NHWC activations: oneDNN's convolutions (depthwise above all) run ~2x faster on CPU
_LAYOUT = torch.channels_last


def eval_batches(
    splits: DatasetSplits,
    *,
    split: str,
    resolution: int | None,
    calibration_batches: int,
    batch_size: int,
    seed: int,
    device: torch.device | str,
    max_images: int | None = None,
) -> EvalBatches:
    """The inputs `score_subnet` needs for subnets of one resolution (see `evaluate_subnet`).

    `max_images` keeps only the split's first images (in its fixed order): cheaper scores of
    many subnets, all on the same images.
    """
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got '{split}'")
    calibration: list[Tensor] = []
    for images in calibration_images(splits, batch_size=batch_size, device=device, seed=seed,
                                     resolution=resolution):
        if len(calibration) >= calibration_batches:
            break
        calibration.append(images.contiguous(memory_format=_LAYOUT))
    loader = BatchLoader.for_splits(splits, split, batch_size=batch_size, device=device)
    batches, kept = [], 0
    for images, labels in loader.epoch(0):
        if max_images is not None:
            if kept >= max_images:
                break
            images, labels = images[:max_images - kept], labels[:max_images - kept]
        kept += int(labels.numel())
        batches.append((resize_to(images, resolution).contiguous(memory_format=_LAYOUT), labels))
    return EvalBatches(calibration, batches, split, splits.name, calibration_batches)


@torch.no_grad()
def score_subnet(
    supernet: Supernet, arch: Arch, inputs: EvalBatches, *, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Top-1 and loss of `arch` on `inputs` (made at the arch's resolution by `eval_batches`).

    The subnet is extracted, recalibrated on `inputs.calibration` and BN-folded, so the
    supernet's own statistics are left untouched.
    """
    subnet = supernet.extract_subnet(arch).to(device).to(memory_format=_LAYOUT)  # type: ignore[call-overload]
    recalibrate_bn(subnet, inputs.calibration, num_batches=inputs.calibration_batches)
    subnet = fuse_conv_bn(subnet)  # eval mode; BN folded into the convs: same outputs, faster
    # the folded convs' weights are new NCHW tensors: channels-last again, or every conv takes
    # oneDNN's slow mixed-layout path (10x slower measured on a 12 px quickstart subnet)
    subnet = subnet.to(memory_format=_LAYOUT)  # type: ignore[call-overload]
    correct, loss_sum, n = 0, 0.0, 0
    for images, labels in inputs.batches:
        logits = subnet(images)
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == labels).sum())
        n += int(labels.numel())
    if n == 0:
        raise ConfigError(
            f"split '{inputs.split}' of dataset '{inputs.dataset}' is empty; nothing to evaluate"
        )
    return {"top1": 100.0 * correct / n, "loss": loss_sum / n, "n": n}


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
    arch's resolution when it differs from the dataset's image size. To score many subnets,
    make the inputs once with `eval_batches` and call `score_subnet` (`TrainedSupernet` does).

    Returns:
        `{"top1": percent in [0, 100], "loss": mean cross-entropy, "n": images evaluated}`.
    """
    arch = supernet.space.normalize(arch)
    inputs = eval_batches(splits, split=split, resolution=supernet.input_resolution(arch),
                          calibration_batches=max(calibration_batches, 0),
                          batch_size=batch_size, seed=seed, device=device)
    return score_subnet(supernet, arch, inputs, device=device)
