"""Synthetic latency data: subnets made of blocks whose costs add up, plus overhead and noise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from predictors.base import Features


@dataclass
class Synthetic:
    features: Features
    latency_ms: np.ndarray
    block_ms: np.ndarray


def draw_slots(
    rng: np.random.Generator, n: int, keys: int, slots: int, active_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """`(encoded, counts)` of `n` subnets: each slot runs one of `keys` blocks, or nothing."""
    choice = rng.integers(0, keys, size=(n, slots))
    active = rng.random((n, slots)) < active_share
    counts = np.zeros((n, keys), dtype=np.float32)
    for row in range(n):
        np.add.at(counts[row], choice[row][active[row]], 1.0)
    encoded = np.concatenate([np.eye(keys)[choice].reshape(n, -1), active], axis=1)
    return encoded.astype(np.float32), counts


def make_synthetic(n: int = 200, *, keys: int = 24, slots: int = 8, seed: int = 0) -> Synthetic:
    rng = np.random.default_rng(seed)
    block_ms = rng.uniform(0.2, 2.0, size=keys)
    encoded, counts = draw_slots(rng, n, keys, slots, 0.8)
    latency = 1.1 * counts @ block_ms + 0.8
    latency *= 1.0 + 0.01 * rng.standard_normal(n)
    return Synthetic(Features(encoded, counts), latency, block_ms)


@pytest.fixture
def synthetic() -> Synthetic:
    return make_synthetic()


@pytest.fixture
def make_data() -> Callable[..., Synthetic]:
    """The generator itself, for tests that need several data sets."""
    return make_synthetic


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Tests call predictors directly: keep numpy's BLAS on one thread as the library does."""
    from predictors._threads import one_blas_thread

    with one_blas_thread():
        yield


@dataclass
class Devices:
    """The same subnets on several synthetic devices whose latency follows structure."""

    features: Features
    latency_ms: list[np.ndarray]


def make_devices(
    n: int, weights: list[np.ndarray], *, columns: int = 24, keys: int = 30, slots: int = 8,
    noise: float = 0.01, seed: int = 0,
) -> Devices:
    """Latency = `counts @ table @ weights[d] + 1`, times `1 + noise * N(0, 1)`, per device.

    The table (one row of `columns` structural descriptors per block key) is the same for every
    seed, so data sets drawn with different seeds describe the same devices.
    """
    from predictors.structure.base import KeyTableDescriber

    table = np.random.default_rng(1234).uniform(0.0, 1.0, size=(keys, columns))
    rng = np.random.default_rng(seed)
    encoded, counts = draw_slots(rng, n, keys, slots, 0.7)
    describer = KeyTableDescriber([f"c{i}" for i in range(columns)], table, "test/1")
    features = Features(encoded, counts, describer)
    structure = counts.astype(np.float64) @ table
    latency = [
        (structure @ w + 1.0) * (1.0 + noise * rng.standard_normal(n)) for w in weights
    ]
    return Devices(features, latency)


@pytest.fixture
def devices() -> Callable[..., Devices]:
    return make_devices
