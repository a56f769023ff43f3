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


def make_synthetic(n: int = 200, *, keys: int = 24, slots: int = 8, seed: int = 0) -> Synthetic:
    rng = np.random.default_rng(seed)
    block_ms = rng.uniform(0.2, 2.0, size=keys)
    choice = rng.integers(0, keys, size=(n, slots))
    active = rng.random((n, slots)) < 0.8
    counts = np.zeros((n, keys), dtype=np.float32)
    for row in range(n):
        np.add.at(counts[row], choice[row][active[row]], 1.0)
    encoded = np.concatenate([np.eye(keys)[choice].reshape(n, -1), active], axis=1)
    latency = 1.1 * counts @ block_ms + 0.8
    latency *= 1.0 + 0.01 * rng.standard_normal(n)
    return Synthetic(Features(encoded.astype(np.float32), counts), latency, block_ms)


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
