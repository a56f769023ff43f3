"""Datasets: one in-memory interface for digits, synthetic, CIFAR-10/100 and image folders."""

from __future__ import annotations

from nas.data._registry import DATASETS, RawDataset, register_dataset
from nas.data.base import (
    BatchLoader,
    DatasetSplits,
    Split,
    augment_batch,
    load_dataset,
    split_indices,
)

__all__ = [
    "DATASETS",
    "BatchLoader",
    "DatasetSplits",
    "RawDataset",
    "Split",
    "augment_batch",
    "load_dataset",
    "register_dataset",
    "split_indices",
]
