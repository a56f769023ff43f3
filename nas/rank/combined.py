"""`combined`: several scorers merged by rank aggregation (the mean of each subnet's ranks).

Scores of different proxies live on unrelated scales (synflow spans dozens of orders of
magnitude, naswot is a log-determinant), so they are combined by rank, which needs no labels.
`DEFAULT_MEMBERS` is what `nas rank --proxies combined` uses; callers may pass their own.

Why naswot, synflow and jacov: on NAS-Bench-201 / CIFAR-10 (cells stratified by size, one batch
of 64 CIFAR-10 JPEG training images, seeded default initialisation, seed 0), Kendall tau:

| cells | naswot | synflow | jacov | snip | params | naswot+synflow+jacov |
|---|---|---|---|---|---|---|
| 200 (an earlier sample) | 0.633 | 0.597 | 0.575 | 0.501 | 0.561 | **0.709** |
| 254 of a 300 sample | 0.669 | 0.585 | 0.541 | 0.525 | 0.596 | **0.744** |

On the 254 cells every set of 2 to 4 of naswot, synflow, jacov, snip and params was measured:
naswot+synflow+jacov was the best (next: +params 0.741, synflow+jacov+params 0.740); on the 200
cells it beat the sets measured then (naswot+synflow 0.667, naswot+synflow+params 0.663, the
issue's reference set, 0.679 on the 254). Adding params or snip never helped by more than the
noise (bootstrap intervals are about +-0.05 wide); grasp costs several times the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from nas.errors import ConfigError

DEFAULT_MEMBERS: tuple[str, ...] = ("naswot", "synflow", "jacov")  # measured: module doc


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
