"""How many measurements a device needs: a learning curve from cross-validation, extrapolated.

For imported devices the question after a first fit is "how many more subnets should I
measure?". The curve answers it from the data at hand: in each outer fold, the predictor is fitted
on growing subsets of the training subnets and scored on the held-out ones. Each point's
+-10 % share is turned into the spread of a normal error with that share
(`sigma = 0.1 / z((1 + share) / 2)`), and the learning-curve law of least squares,
`sigma^2(m) = floor + b / (m - d)` (d: the effective number of parameters), is fitted to it
(non-negative terms). The floor is what no amount of data removes (the device's noise, or what
the model cannot express); `b / (m - d)` is the part more measurements remove. Solving for the
target share gives the measurements needed, or says that the floor puts the target out of
reach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from nas.errors import ConfigError
from predictors._threads import one_blas_thread
from predictors.base import Features, create_predictor, weighted_lstsq
from predictors.report import POOR_WITHIN10
from predictors.select import folds

TOLERANCE = 0.10  # the +-10 % goal the shares are counted against
MIN_SIZE = 10


@dataclass(frozen=True)
class LearningCurve:
    """Held-out quality against the number of training subnets.

    Attributes:
        sizes: training subnets per fit, increasing (the last is all but one fold).
        within10: share of held-out subnets within +-10 % at each size.
        mape: mean absolute percentage error at each size.
        n_measured: subnets the curve was computed from.
    """

    sizes: tuple[int, ...]
    within10: tuple[float, ...]
    mape: tuple[float, ...]
    n_measured: int

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "within10": list(self.within10),
                "mape": list(self.mape), "n_measured": self.n_measured}


def _sizes(largest: int, count: int) -> list[int]:
    smallest = min(largest, max(MIN_SIZE, largest // 5))
    grid = np.geomspace(smallest, largest, count)
    return sorted({int(round(v)) for v in grid})


def learning_curve(
    features: Features, latency_ms: np.ndarray, *, kind: str = "structural",
    options: Mapping[str, Any] | None = None, points: int = 6, repeats: int = 3,
    holdout: float = 0.25, seed: int = 0, block_ms: np.ndarray | None = None,
) -> LearningCurve:
    """Cross-validated quality of predictor `kind` fitted on growing subsets of the subnets.

    Args:
        features: features of the measured subnets.
        latency_ms: their latency.
        kind: the predictor kind (its defaults, plus `options`).
        options: constructor options of the kind (e.g. `{"prior": ...}` for `transfer`).
        points: sizes on the curve (geometric, from a fifth of the training subnets to all).
        repeats: random subsets per size below the largest (their errors are pooled).
        holdout: share of subnets per outer fold (0.25: 4 folds).
        seed: seeds the folds and the subsets.
        block_ms: per-block timings, for the kinds that use them (`lut`, `residual`).

    Raises:
        ConfigError: too few subnets to hold any out (fewer than 20 with 4 folds).
    """
    y = np.asarray(latency_ms, dtype=np.float64)
    parts = folds(len(y), holdout=holdout, seed=seed)
    if not parts:
        raise ConfigError(
            f"a learning curve needs at least {4 * 5} measured subnets, got {len(y)}"
        )
    largest = len(y) - max(len(p) for p in parts)
    sizes = _sizes(largest, points)
    rng = np.random.default_rng(seed)
    errors: dict[int, list[np.ndarray]] = {m: [] for m in sizes}
    with one_blas_thread():
        for part in parts:
            pool = np.setdiff1d(np.arange(len(y)), part)
            for m in sizes:
                for _ in range(1 if m >= len(pool) else repeats):
                    subset = rng.choice(pool, size=min(m, len(pool)), replace=False)
                    predictor = create_predictor(kind, **dict(options or {}))
                    predictor.fit(features.take(subset), y[subset], block_ms=block_ms)
                    predicted = predictor.predict(features.take(part))
                    errors[m].append(np.abs(predicted - y[part]) / y[part])
    pooled = [np.concatenate(errors[m]) for m in sizes]
    return LearningCurve(
        tuple(sizes), tuple(float(np.mean(e <= TOLERANCE)) for e in pooled),
        tuple(float(100 * np.mean(e)) for e in pooled), len(y),
    )


def spread_of(share: float, n: int) -> float:
    """The normal error spread (relative) that puts `share` within +-10 %."""
    clipped = min(max(share, 0.5 / n), 1.0 - 0.5 / n)  # a share of 0 or 1 has no finite spread
    return TOLERANCE / NormalDist().inv_cdf(0.5 * (1.0 + clipped))


def share_of(spread: float) -> float:
    """Inverse of `spread_of`: share within +-10 % of a normal error of this spread."""
    if spread <= 0:
        return 1.0
    return 2.0 * NormalDist().cdf(TOLERANCE / spread) - 1.0


def _nonnegative_fit(columns: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients, for two columns (tries each active set)."""
    best, best_error = np.zeros(columns.shape[1]), float(np.sum(weight * target**2))
    for active in ([0, 1], [0], [1]):
        coef = np.zeros(columns.shape[1])
        coef[active] = weighted_lstsq(columns[:, active], target, weight)
        error = float(np.sum(weight * (columns @ coef - target) ** 2))
        if (coef >= 0).all() and error < best_error:
            best, best_error = coef, error
    return best


def _fit_law(
    sizes: np.ndarray, shares: Sequence[float], n: int
) -> tuple[float, float, float]:
    """`(floor, b, d)` of `variance(m) = floor + b / (m - d)`, d from a grid.

    `b / (m - d)` is the variance of least squares with d effective parameters (it explodes as
    m nears d), so a curve that starts flat and then drops fast is followed too. For each d,
    floor and b are fitted to the points beyond d; the d whose law best matches the measured
    shares (share space is bounded, so the flat start does not dominate) is kept; larger sizes
    weigh more: they are closest to where the curve is extrapolated.
    """
    variance = np.array([spread_of(s, n) ** 2 for s in shares])
    measured = np.asarray(shares, dtype=np.float64)
    weight = sizes / sizes.sum()
    best: tuple[float, float, float, float] = (np.inf, 0.0, 0.0, 0.0)
    for d in np.linspace(0.0, 0.9 * sizes[-2], 10) if len(sizes) > 2 else [0.0]:
        beyond = sizes > d
        columns = np.stack([np.ones(beyond.sum()), 1.0 / (sizes[beyond] - d)], axis=1)
        floor, slope = _nonnegative_fit(columns, variance[beyond], weight[beyond])
        law = np.zeros_like(measured)
        law[beyond] = [share_of(math.sqrt(floor + slope / (m - d))) for m in sizes[beyond]]
        error = float(np.sum(weight * (law - measured) ** 2))
        if error < best[0] - 1e-12:
            best = (error, float(floor), float(slope), float(d))
    return best[1], best[2], best[3]


@dataclass(frozen=True)
class Needed:
    """What the learning curve says about reaching the goal.

    Attributes:
        target: the share within +-10 % asked for.
        total: subnets needed in all (None: out of reach, see `limit`).
        more: how many beyond those measured (0 when already enough; None: out of reach).
        limit: the share the fitted curve tends to with unlimited measurements.
        extrapolated: True when `total` is more than 4x the measured subnets (a rough figure).
    """

    target: float
    total: int | None
    more: int | None
    limit: float
    extrapolated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "total": self.total, "more": self.more,
                "limit": self.limit, "extrapolated": self.extrapolated}

    def message(self) -> str:
        """One line for the quality report."""
        goal = f"{100 * self.target:.0f}% within +-10%"
        if self.total is None:
            return (f"{goal} is out of reach with more subnets alone: the learning curve levels "
                    f"off near {100 * self.limit:.0f}% (device noise or model limit; compare "
                    "the noise floor)")
        if not self.more:
            return f"{goal}: enough subnets measured"
        rough = " (rough: extrapolated far beyond the data)" if self.extrapolated else ""
        return f"{goal}: about {self.more} more measured subnets needed{rough}"


def measurements_needed(
    curve: LearningCurve, *, target: float = POOR_WITHIN10, n_measured: int | None = None
) -> Needed:
    """Subnets needed for `target` within +-10 %, from the curve's fitted law.

    Args:
        curve: from `learning_curve`.
        target: the share asked for (default: the threshold below which a predictor is poor).
        n_measured: subnets the final predictor is fitted on (default: `curve.n_measured`).
    """
    n = n_measured or curve.n_measured
    sizes = np.asarray(curve.sizes, dtype=np.float64)
    floor, slope, offset = _fit_law(sizes, curve.within10, curve.n_measured)
    goal = spread_of(target, 10**6) ** 2
    limit = share_of(math.sqrt(floor))
    if floor >= goal:
        return Needed(target, None, None, limit, False)
    # never below the smallest size measured: the law is not known to hold down there
    total = max(int(sizes[0]), math.ceil(offset + slope / (goal - floor)))
    return Needed(target, total, max(0, total - n), limit, total > 4 * n)


def needed_report(
    features: Features, latency_ms: np.ndarray, *, kind: str,
    options: Mapping[str, Any] | None = None, target: float = POOR_WITHIN10, seed: int = 0,
    block_ms: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """The quality report's "measurements needed" entry for predictor `kind`, or None.

    None when there are too few subnets for a cross-validated curve (below 20). Otherwise
    `{"learning_curve": {...}, "needed": {...}, "message": "..."}`: the curve of `kind`
    (fitted with `options`, as `fit_and_select` fitted it) and what it says about `target`.
    """
    if not folds(len(latency_ms), holdout=0.25, seed=seed):
        return None
    curve = learning_curve(features, latency_ms, kind=kind, options=options, seed=seed,
                           block_ms=block_ms)
    needed = measurements_needed(curve, target=target)
    return {"learning_curve": curve.to_dict(), "needed": needed.to_dict(),
            "message": needed.message()}
