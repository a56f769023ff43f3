"""How well a scorer ranks subnets against a ground truth, with paired bootstrap intervals.

Four metrics, each higher-is-better and computed on the same subnets:

- `kendall_tau`: Kendall's tau-b (ties in either vector handled as scipy does).
- `spearman`: Spearman's rho (Pearson correlation of average ranks).
- `precision_top`: of the truly best `top_fraction` of subnets (k = round(fraction * n), at
  least 1), the share the scorer also puts in its best k. Ties at the k-th place are broken at
  random, in expectation: a subnet tied at the threshold counts as the fraction of the tied
  places that remain, so the value does not depend on the input order. Chance level is k / n.
- `tau_top`: Kendall's tau-b among the truly best `top_fraction` (every subnet tied with the
  k-th best is kept); it asks whether the scorer orders the subnets a search would pick.

Every metric is written for a resample given by multiplicities `c` (how often each subnet was
drawn), so all bootstrap resamples are a few matrix products with the pairwise sign matrices
S_ij = sign(x_i - x_j) instead of a Python loop: tau-b = c'(Sx*Sy)c / sqrt(c'|Sx|c c'|Sy|c)
(ties, including two copies of one subnet, vanish from |S|), and the average rank of subnet j
is (n + 1)/2 - (c'S)_j / 2, so rho is the c-weighted correlation of c'Sx and c'Sy (whose
c-weighted means are 0 since S is antisymmetric). Cost: O(resamples * n^2), about 0.05 s per
metric for 300 subnets and 1000 resamples; memory stays at O(resamples * n) (sign matrices in
column blocks). Thousands of subnets are slow (the whole NAS-Bench-201 table, n = 15,625, takes
seconds per metric even without resamples): rank samples of a few hundred.

Undefined values are NaN, never an error: tau and rho of a constant vector, tau_top when fewer
than two subnets are in the top. Fewer than two subnets, unequal lengths or NaN inputs raise
`ConfigError`; +-inf is a valid score (it ranks first or last).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nas.errors import ConfigError

# Column block of the sign matrices: bounds memory at resamples x block floats per product.
_BLOCK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the sample and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | None]:
        # JSON has no NaN: an undefined value is written as null
        return {k: None if math.isnan(v) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class RankingMetrics:
    """The four metrics of one scorer (see the module docstring)."""

    n: int
    top_fraction: float
    kendall_tau: Estimate
    spearman: Estimate
    precision_top: Estimate
    tau_top: Estimate

    def as_dict(self) -> dict[str, Any]:
        """`{"kendall_tau", "spearman", "precision_top10", "tau_top10"}` (10 = percent kept)."""
        percent = round(100 * self.top_fraction)
        return {
            "kendall_tau": self.kendall_tau.as_dict(),
            "spearman": self.spearman.as_dict(),
            f"precision_top{percent}": self.precision_top.as_dict(),
            f"tau_top{percent}": self.tau_top.as_dict(),
        }


def ranking_metrics(
    truth: ArrayLike,
    scores: Mapping[str, ArrayLike],
    *,
    rng: np.random.Generator,
    top_fraction: float = 0.1,
    resamples: int = 1000,
    confidence: float = 0.95,
) -> dict[str, RankingMetrics]:
    """Metrics of every scorer against `truth`, with paired bootstrap intervals.

    Args:
        truth: the measured quality of each subnet (higher is better).
        scores: scorer name -> its score of each subnet, in the order of `truth`.
        rng: the only source of randomness; all scorers share the same resamples, so their
            intervals are paired.
        top_fraction: the share of best subnets `precision_top` and `tau_top` look at.
        resamples: bootstrap resamples (subnets drawn with replacement); 0 gives NaN intervals.
        confidence: coverage of the percentile interval.

    Raises:
        ConfigError: fewer than two subnets, unequal lengths, NaN values or bad options.
    """
    true = _vector(truth, "truth")
    _check_options(top_fraction, resamples, confidence)
    counts = np.ones((1, true.size))
    if resamples:
        counts = np.vstack([counts, resample_counts(rng, true.size, resamples)])
    return {
        name: _metrics_of(
            true, _vector(values, name, size=true.size), counts, top_fraction, confidence
        )
        for name, values in scores.items()
    }


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b of two vectors (NaN when either is constant)."""
    a = _vector(x, "x")
    b = _vector(y, "y", size=a.size)
    return float(_tau_b(np.ones((1, a.size)), a, b)[0])


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho with average ranks for ties (NaN when either vector is constant)."""
    a = _vector(x, "x")
    b = _vector(y, "y", size=a.size)
    return float(_spearman(np.ones((1, a.size)), a, b)[0])


def precision_at_top(truth: ArrayLike, scores: ArrayLike, fraction: float = 0.1) -> float:
    """Share of the truly best `fraction` that `scores` also ranks in its best `fraction`."""
    true = _vector(truth, "truth")
    return float(
        _precision(
            np.ones((1, true.size)), true, _vector(scores, "scores", size=true.size), fraction
        )[0]
    )


def tau_at_top(truth: ArrayLike, scores: ArrayLike, fraction: float = 0.1) -> float:
    """Kendall's tau-b among the truly best `fraction` of subnets."""
    true = _vector(truth, "truth")
    top = _top_counts(np.ones((1, true.size)), true, fraction)
    return float(_tau_b(top, true, _vector(scores, "scores", size=true.size))[0])


def resample_counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """`(resamples, n)` multiplicities of n subnets drawn n times with replacement."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return (
        np.bincount(draws.ravel(), minlength=resamples * n)
        .reshape(resamples, n)
        .astype(np.float64)
    )


def _metrics_of(
    truth: np.ndarray, scores: np.ndarray, counts: np.ndarray, fraction: float, confidence: float
) -> RankingMetrics:
    top = _top_counts(counts, truth, fraction)
    rows = {
        "kendall_tau": _tau_b(counts, truth, scores),
        "spearman": _spearman(counts, truth, scores),
        "precision_top": _precision(counts, truth, scores, fraction),
        "tau_top": _tau_b(top, truth, scores),
    }
    estimates = {name: _estimate(values, confidence) for name, values in rows.items()}
    return RankingMetrics(n=truth.size, top_fraction=fraction, **estimates)


def _estimate(values: np.ndarray, confidence: float) -> Estimate:
    """Row 0 is the sample; the other rows are resamples (NaN ones, e.g. all tied, dropped)."""
    boot = values[1:][~np.isnan(values[1:])]
    if boot.size == 0:
        return Estimate(float(values[0]), math.nan, math.nan)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    return Estimate(float(values[0]), float(low), float(high))


def _signs(x: np.ndarray, columns: slice) -> np.ndarray:
    """S_ij = sign(x_i - x_j) for the j in `columns`; comparisons keep +-inf well defined."""
    col = x[None, columns]
    return (x[:, None] > col).astype(np.float32) - (x[:, None] < col).astype(np.float32)


def _blocks(n: int) -> list[slice]:
    width = max(1, _BLOCK_ENTRIES // max(n, 1))
    return [slice(start, min(n, start + width)) for start in range(0, n, width)]


def _tau_b(counts: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Tau-b of each row of multiplicities (exact: float32 products of small integers)."""
    weights = counts.astype(np.float32)
    numerator = np.zeros(len(counts))
    untied_x = np.zeros(len(counts))
    untied_y = np.zeros(len(counts))
    for cols in _blocks(x.size):
        sx, sy = _signs(x, cols), _signs(y, cols)
        c = counts[:, cols]
        numerator += ((weights @ (sx * sy)) * c).sum(axis=1)
        untied_x += ((weights @ np.abs(sx)) * c).sum(axis=1)
        untied_y += ((weights @ np.abs(sy)) * c).sum(axis=1)
    return _ratio(numerator, np.sqrt(untied_x * untied_y))


def _spearman(counts: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    weights = counts.astype(np.float32)
    u = np.hstack([weights @ _signs(x, cols) for cols in _blocks(x.size)]).astype(np.float64)
    v = np.hstack([weights @ _signs(y, cols) for cols in _blocks(y.size)]).astype(np.float64)
    numerator = (counts * u * v).sum(axis=1)
    return _ratio(numerator, np.sqrt((counts * u * u).sum(axis=1) * (counts * v * v).sum(axis=1)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _top_size(n: int, fraction: float) -> int:
    return max(1, math.floor(fraction * n + 0.5))


def _threshold(counts: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the k-th largest value of the multiset given by the multiplicities."""
    order = np.argsort(-values, kind="stable")
    reached = np.cumsum(counts[:, order], axis=1) >= k
    return np.asarray(values[order][reached.argmax(axis=1)])


def _membership(counts: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Probability that each copy of a subnet is in the top k when ties break at random."""
    threshold = _threshold(counts, values, k)[:, None]
    above = values[None, :] > threshold
    at = values[None, :] == threshold
    remaining = (k - (counts * above).sum(axis=1)) / (counts * at).sum(axis=1)
    return np.asarray(above + at * remaining[:, None])


def _precision(
    counts: np.ndarray, truth: np.ndarray, scores: np.ndarray, fraction: float
) -> np.ndarray:
    k = _top_size(truth.size, fraction)
    both = _membership(counts, truth, k) * _membership(counts, scores, k)
    return np.asarray((counts * both).sum(axis=1) / k)


def _top_counts(counts: np.ndarray, truth: np.ndarray, fraction: float) -> np.ndarray:
    """The multiplicities restricted to subnets at or above the k-th best truth."""
    threshold = _threshold(counts, truth, _top_size(truth.size, fraction))
    return np.asarray(counts * (truth[None, :] >= threshold[:, None]))


def _vector(values: ArrayLike, name: str, *, size: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ConfigError(f"{name}: expected a 1-d vector of scores, got shape {array.shape}")
    if size is not None and array.size != size:
        raise ConfigError(
            f"{name}: expected one value per subnet ({size}), got {array.size}; "
            "score every subnet of the truth"
        )
    if array.size < 2:
        raise ConfigError(f"{name}: expected at least 2 subnets to rank, got {array.size}")
    missing = int(np.isnan(array).sum())
    if missing:
        raise ConfigError(
            f"{name}: expected a value for every subnet, got {missing} NaN; "
            "drop the subnets it could not score"
        )
    return array


def _check_options(fraction: float, resamples: int, confidence: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"top fraction: expected 0 < fraction <= 1, got {fraction}")
    if resamples < 0:
        raise ConfigError(f"resamples: expected >= 0, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence: expected 0 < confidence < 1, got {confidence}")
