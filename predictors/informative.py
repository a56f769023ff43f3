"""Which subnets to measure on a new device: the most informative N, not N at random.

With a source device's predictor at hand, the subnets worth measuring are those that pin down
the relation between the two devices: spread evenly over the source's predicted latency (log
scale, from the fastest to the slowest in a large candidate pool), so the scale and offset are
fitted with leverage at both ends, and, among the candidates near each point of that range,
the one least like those already chosen in its structure (different kinds of operations), so
the structural correction sees variety. Random subnets instead bunch in the middle of the range:
the sum of many independent choices is close to normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.arch import Arch, arch_id
from nas.errors import ConfigError
from predictors.io import LatencyModel
from search_spaces.base import SearchSpace

POOL_PER_SAMPLE = 50
MIN_POOL = 2000


def _standardised(structure: np.ndarray) -> np.ndarray:
    spread = structure.std(axis=0)
    keep = spread > 1e-12
    return np.asarray((structure[:, keep] - structure[:, keep].mean(axis=0)) / spread[keep])


def select_informative(
    source_ms: np.ndarray, n: int, *, structure: np.ndarray | None = None
) -> np.ndarray:
    """Indexes of `n` candidates spread over the source's predicted range.

    Args:
        source_ms: the source predictor's latency for every candidate (ms, positive).
        n: how many to choose (at most the number of candidates).
        structure: `(candidates, S)` structural features; among the candidates in each
            stretch of the range, the one farthest from those already chosen is taken.
            Without it, the one closest to the stretch's centre.

    Returns:
        `n` distinct indexes, from the fastest stretch to the slowest. Deterministic.
    """
    values = np.log(np.maximum(np.asarray(source_ms, dtype=np.float64), 1e-12))
    if not 1 <= n <= len(values):
        raise ConfigError(f"expected 1 <= samples <= {len(values)} candidates, got {n}")
    edges = np.linspace(values.min(), values.max(), n + 1)
    space = _standardised(structure) if structure is not None else None
    chosen: list[int] = []
    free = np.ones(len(values), dtype=bool)
    for k in range(n):
        centre = 0.5 * (edges[k] + edges[k + 1])
        inside = free & (values >= edges[k]) & (values <= edges[k + 1])
        if not inside.any():  # an empty stretch: the free candidate nearest its centre
            inside = free & (np.abs(values - centre) == np.abs(values[free] - centre).min())
        candidates = np.flatnonzero(inside)
        if space is None or not chosen:
            pick = candidates[np.argmin(np.abs(values[candidates] - centre))]
        else:
            gaps = ((space[candidates, None, :] - space[None, chosen, :]) ** 2).sum(axis=2)
            pick = candidates[np.argmax(gaps.min(axis=1))]
        chosen.append(int(pick))
        free[pick] = False
    return np.array(chosen, dtype=np.int64)


def candidate_pool(
    space: SearchSpace, size: int, *, seed: int
) -> list[dict[str, Any]]:
    """`size` distinct random subnets (fewer if the space is smaller), plus both extremes."""
    rng = np.random.default_rng(seed)
    pool = {arch_id(a): dict(a) for a in (space.smallest(), space.largest())}
    attempts = 0
    while len(pool) < size and attempts < 4 * size:
        arch = space.sample(rng)
        pool.setdefault(arch_id(arch), arch)
        attempts += 1
    return list(pool.values())


def informative_subnets(
    space: SearchSpace, source: LatencyModel, n: int, *, seed: int = 0,
    pool: Sequence[Arch] | None = None,
) -> list[dict[str, Any]]:
    """The `n` subnets of `space` most worth measuring on a new device, given a source device.

    Args:
        space: the space to draw from.
        source: the source device's predictor (`predictors.load_predictor`).
        n: how many subnets to return.
        seed: seeds the random candidate pool (`max(50 n, 2000)` subnets).
        pool: candidates to choose from instead of a random pool (canonical archs).
    """
    archs = [dict(a) for a in pool] if pool is not None else candidate_pool(
        space, max(POOL_PER_SAMPLE * n, MIN_POOL), seed=seed)
    features = source.features(archs)
    structure = features.structure if features.structure.shape[1] else features.encoded
    chosen = select_informative(source.predict_features(features), n,
                                structure=np.asarray(structure, dtype=np.float64))
    return [archs[i] for i in chosen]
