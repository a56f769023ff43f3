"""Which subnets to rank: distinct subnets spread evenly over model size.

Uniformly sampled subnets crowd around the middle of the size range, and a ranking measured
there says little about the small and large models a search ends up choosing between. So a
large pool is drawn (or a truth table's subnets are taken), cut into bins at quantiles of the
parameter count, and the same number of subnets is taken from every bin. With many tied sizes
(NB201 has 24 distinct parameter counts) some quantiles coincide; the empty bins are dropped
and the remaining ones renumbered, so a bin index always means "a size range".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.arch import arch_id
from nas.errors import ConfigError
from search_spaces.base import SearchSpace


@dataclass(frozen=True)
class SampledSubnet:
    """A subnet chosen for ranking, with its size and size bin (0 = smallest)."""

    arch: dict[str, Any]
    arch_id: str
    bin: int
    params: int
    macs: int


def sample_by_size(
    space: SearchSpace,
    count: int,
    rng: np.random.Generator,
    *,
    bins: int = 5,
    pool_size: int | None = None,
    candidates: Iterable[Mapping[str, Any]] | None = None,
) -> list[SampledSubnet]:
    """`count` distinct subnets, an equal share (within one) from each parameter-count bin.

    Args:
        space: the search space (its `complexity()` gives the sizes).
        count: how many subnets.
        rng: the only source of randomness; equal seeds give equal samples.
        bins: number of size bins (quantiles of the parameter count).
        pool_size: draws of `space.sample` to bin from (default max(2000, 10 * count)); ignored
            with `candidates`.
        candidates: canonical archs to choose from instead of random draws, e.g. the subnets
            of a truth table (`TruthTable.archs.values()`).

    Returns:
        The subnets ordered by bin; a bin smaller than its share gives all it has and the
        other bins make up the difference.

    Raises:
        ConfigError: bad `count`/`bins`, or fewer distinct subnets in the pool than `count`.
    """
    if count < 1 or bins < 1:
        raise ConfigError(f"sampling: expected count >= 1 and bins >= 1, got {count}, {bins}")
    pool = _distinct(
        candidates if candidates is not None else _draws(space, rng, count, pool_size)
    )
    if len(pool) < count:
        raise ConfigError(
            f"sampling: expected at least {count} distinct subnets to choose from, got "
            f"{len(pool)}; ask for fewer subnets or a larger pool"
        )
    sizes = [space.complexity(arch) for arch in pool]
    labels = _size_bins(np.array([s["params"] for s in sizes], dtype=np.float64), bins)
    members = [np.flatnonzero(labels == b) for b in range(int(labels.max()) + 1)]
    chosen = []
    for label, quota in enumerate(_quotas([len(m) for m in members], count)):
        for index in rng.choice(members[label], size=quota, replace=False).tolist():
            arch = pool[index]
            chosen.append(
                SampledSubnet(
                    arch, arch_id(arch), label, sizes[index]["params"], sizes[index]["macs"]
                )
            )
    return chosen


def _draws(
    space: SearchSpace, rng: np.random.Generator, count: int, pool_size: int | None
) -> list[dict[str, Any]]:
    return [space.sample(rng) for _ in range(pool_size or max(2000, 10 * count))]


def _distinct(archs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for arch in archs:
        seen.setdefault(arch_id(arch), dict(arch))
    return list(seen.values())


def _size_bins(params: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each size by quantiles; coinciding edges merge bins (no empty bin)."""
    edges = np.quantile(params, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    raw = np.searchsorted(edges, params, side="right")
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


def _quotas(sizes: list[int], count: int) -> list[int]:
    """Equal shares (within one), smallest bins served first so their shortfall moves on."""
    quotas = [0] * len(sizes)
    remaining = count
    order = sorted(range(len(sizes)), key=lambda b: sizes[b])
    for position, label in enumerate(order):
        share = remaining // (len(order) - position) if position < len(order) - 1 else remaining
        quotas[label] = min(sizes[label], share)
        remaining -= quotas[label]
    assert remaining == 0, "the pool holds at least `count` subnets"
    return quotas
