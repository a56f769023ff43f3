"""`combined`: several scorers merged by rank aggregation (the mean of each subnet's ranks).

Scores of different proxies live on unrelated scales (synflow spans dozens of orders of
magnitude, naswot is a log-determinant), so they are combined by rank, which needs no labels.
The members are a choice: `DEFAULT_MEMBERS` is provisional, and callers pass their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from nas.errors import ConfigError

# Provisional, to be settled from `nas rank` runs. Issue 20's reference script (NB201 /
# CIFAR-10, 200 cells, one batch of 64) measured Kendall tau 0.577 (naswot), 0.581 (synflow),
# 0.578 (params), 0.640 for the rank average of naswot and synflow, 0.658 for all three. The
# same setting with this package (200 cells stratified by size, seeded default init, CIFAR-10
# JPEGs): naswot 0.633, synflow 0.597, jacov 0.575, params 0.561, snip 0.501; naswot+synflow
# 0.667, naswot+synflow+params 0.663, naswot+synflow+jacov 0.709 (interval 0.65-0.76).
DEFAULT_MEMBERS: tuple[str, ...] = ("naswot", "synflow", "params")


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks 1..n of `values` (1 = lowest), tied values sharing their average rank."""
    array = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return np.asarray((last - (counts - 1) / 2.0)[inverse.reshape(-1)])


def rank_average(
    scores: Mapping[str, ArrayLike], members: Sequence[str] = DEFAULT_MEMBERS
) -> np.ndarray:
    """Each subnet's mean rank over the `members` scorers; higher predicts better.

    Args:
        scores: scorer name -> its value for each subnet (higher is better), same order.
        members: the scorers to combine.

    Raises:
        ConfigError: no members, a member without scores, unequal lengths or NaN values.
    """
    if not members:
        raise ConfigError("combined: expected at least one member scorer, got none")
    missing = [name for name in members if name not in scores]
    if missing:
        raise ConfigError(
            f"combined: expected scores of {', '.join(members)}, got none for "
            f"{', '.join(missing)}; compute those proxies too"
        )
    columns = [np.asarray(scores[name], dtype=np.float64).reshape(-1) for name in members]
    if len({column.size for column in columns}) != 1:
        sizes = ", ".join(f"{n}={c.size}" for n, c in zip(members, columns, strict=True))
        raise ConfigError(f"combined: expected one value per subnet for every member, got {sizes}")
    for name, column in zip(members, columns, strict=True):
        if np.isnan(column).any():
            raise ConfigError(
                f"combined: member '{name}' has NaN scores; drop the subnets it could not score"
            )
    return np.asarray(np.mean([average_ranks(column) for column in columns], axis=0))
