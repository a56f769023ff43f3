"""Fixtures for export tests: tiny supernets of every registered space, tiny datasets, and one
shared export folder (tracing and ONNX export cost about a second each, so it is made once)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.data import DatasetSplits, load_dataset
from nas.errors import NasError
from nas.export import ExportReport, export_subnet
from nas.supernet import Supernet
from search_spaces import SPACES, SearchSpace, builtin_space_names


def tiny_space(name: str) -> SearchSpace:
    """The space's `tiny()` construction when it has one, else its defaults."""
    cls: Any = SPACES.get(name)
    return cls.tiny() if hasattr(cls, "tiny") else cls()


def supernet_space_names() -> list[str]:
    """Registered spaces that can build a supernet (tabular ones such as nb201 cannot)."""
    names = []
    for name in builtin_space_names():
        try:
            tiny_space(name).build_supernet()
        except NasError:
            continue
        names.append(name)
    return names


def tiny_splits(space: SearchSpace, *, size: int = 48, seed: int = 0) -> DatasetSplits:
    """A synthetic dataset shaped for `space` (classes, channels, image side)."""
    return load_dataset(
        "synthetic",
        image_size=int(getattr(space, "image_size", 16)),
        num_classes=int(getattr(space, "num_classes", 4)),
        synthetic_size=size,
        seed=seed,
    )


SUPERNET_SPACES = supernet_space_names()


@pytest.fixture(scope="session")
def make_export(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., tuple[Supernet, ExportReport]]:
    """`make_export(space_name, seed, formats)`: a fresh tiny supernet and an export of a random
    subnet (cached per arguments for the session)."""
    cache: dict[tuple[str, int, tuple[str, ...]], tuple[Supernet, ExportReport]] = {}

    def make(
        name: str, seed: int = 0, formats: tuple[str, ...] = ("pytorch", "torchscript", "onnx")
    ) -> tuple[Supernet, ExportReport]:
        key = (name, seed, formats)
        if key not in cache:
            space = tiny_space(name)
            supernet = space.build_supernet()
            arch = space.sample(np.random.default_rng(seed))
            out = tmp_path_factory.mktemp(f"export-{name}-{seed}")
            report = export_subnet(
                supernet, arch, out, splits=tiny_splits(space), formats=formats,
                calib_batches=2, batch_size=16, latency_devices=(), seed=seed,
                provenance={"run": "tiny", "search_tag": "t1"},
            )
            cache[key] = (supernet, report)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def ofa_export(make_export: Callable[..., tuple[Supernet, ExportReport]]) -> Path:
    """An export folder of a random tiny ofa-mbv3 subnet in all three formats."""
    return make_export("ofa-mbv3", 0)[1].out_dir
