"""Which subnets to measure: spread evenly over model size within every resolution.

Uniform random subnets crowd around the middle of the MACs range (sums of many independent
choices), so the smallest and largest models, where latency budgets bite, would be rare.
Instead a large random pool is drawn, and subnets are picked at evenly spaced MACs within each
resolution, plus the space's largest and smallest subnets.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from nas.arch import arch_id
from search_spaces.base import SearchSpace


def _pool(space: SearchSpace, size: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(size * 3):
        arch = space.sample(rng)
        seen.setdefault(arch_id(arch), arch)
        if len(seen) >= size:
            break
    return list(seen.values())


def _spread(
    archs: list[dict[str, Any]], macs: np.ndarray, count: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """`count` archs nearest to evenly spaced MACs targets, each arch used once."""
    if count >= len(archs):
        return archs
    order = np.argsort(macs, kind="stable")
    sorted_macs = macs[order]
    free = np.ones(len(archs), dtype=bool)
    targets = np.linspace(sorted_macs[0], sorted_macs[-1], count)
    chosen = []
    for target in rng.permutation(targets):
        distance = np.abs(sorted_macs - target)
        distance[~free] = np.inf
        pick = int(np.argmin(distance))
        free[pick] = False
        chosen.append(archs[int(order[pick])])
    return chosen


def stratified_sample(
    space: SearchSpace, count: int, rng: np.random.Generator, *, pool_factor: int = 8
) -> list[dict[str, Any]]:
    """`count` distinct subnets spread over resolutions and MACs, largest and smallest first.

    Args:
        space: the search space.
        count: how many subnets.
        rng: the random generator (the only source of randomness).
        pool_factor: the random pool is `pool_factor * count` subnets.
    """
    extremes = {arch_id(a): a for a in (space.largest(), space.smallest())}
    chosen = list(extremes.values())[:count]
    if count <= len(chosen):
        return chosen
    pool = [a for a in _pool(space, pool_factor * count, rng) if arch_id(a) not in extremes]
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for arch in pool:
        groups[arch.get("resolution")].append(arch)
    keys = sorted(groups, key=str)
    remaining = count - len(chosen)
    for position, key in enumerate(keys):
        share = remaining // len(keys) + (1 if position < remaining % len(keys) else 0)
        members = groups[key]
        macs = np.array([space.complexity(a)["macs"] for a in members], dtype=np.float64)
        chosen.extend(_spread(members, macs, share, rng))
    return chosen
