"""Fixtures of the training tests: a registered toy space, tiny data and tiny configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from train_toy import NAME, ToySpace, ToySupernet, register

from nas.artifacts import RunDir
from nas.data import BatchLoader, Split
from nas.train.config import TrainConfig

register()


@pytest.fixture
def toy_space() -> ToySpace:
    return ToySpace(num_classes=4, resolutions=[12, 16], image_size=16)


@pytest.fixture
def toy_net(toy_space: ToySpace) -> ToySupernet:
    return toy_space.build_supernet()


def tiny_split(n: int = 48, size: int = 16, classes: int = 4, seed: int = 0) -> Split:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 60, (n, 3, size, size), generator=generator, dtype=torch.uint8)
    images[:, labels % 3] += 120  # a learnable signal: one bright channel per class
    return Split(images, labels.long())


@pytest.fixture
def tiny_loader() -> BatchLoader:
    return BatchLoader(
        tiny_split(), batch_size=8, device="cpu", mean=(0.5,) * 3, std=(0.25,) * 3,
        shuffle=True, seed=0, augment=True, drop_last=True,
    )


def toy_config(**overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "space": NAME, "dataset": "synthetic", "image_size": 16, "resolutions": (12, 16),
        "epochs": 2, "batch_size": 16, "lr": 0.05, "checkpoint_every": 4, "log_every": 2,
        "bn_calibration_batches": 2, "eval_batch_size": 64,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return RunDir(tmp_path / "runs", "r1")
