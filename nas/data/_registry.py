"""The registry of datasets: each loader registers a function returning a `RawDataset`.

Loader modules import `register_dataset` from here, never from `nas.data`, so the package can
import them without being imported back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nas.registry import Registry


@dataclass(frozen=True)
class RawDataset:
    """What a loader returns before splitting: all images, and an optional official test set."""

    images: torch.Tensor  # uint8 N x C x H x W
    labels: torch.Tensor  # int64
    num_classes: int
    hflip: bool
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    default_image_size: int | None = None  # when --image-size is not given (else the native size)


DatasetLoader = Callable[..., RawDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")
register_dataset = DATASETS.register
