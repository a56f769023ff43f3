"""Quality metrics of latency predictions against measurements.

All metrics are relative where it matters: a latency predictor is used to compare subnets and to
check a budget, so "within +-10 % of measured" is the figure users reason with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# A predictor whose held-out share within +-10 % is below this is flagged: one subnet in five
# would then be mis-judged against a latency budget by more than 10 %, which makes a search under
# a latency constraint unreliable. nn-Meter reports 99 % within +-10 % on its devices.
POOR_WITHIN10 = 0.80


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN becomes None: JSON has no NaN, and strict readers reject it."""
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in values.items()}


@dataclass(frozen=True)
class QualityMetrics:
    """Held-out quality of one predictor.

    Attributes:
        n: number of held-out subnets.
        within5: share of subnets predicted within +-5 % of measured latency.
        within10: share within +-10 %.
        mape: mean absolute percentage error, in percent.
        rmse_ms: root mean squared error in milliseconds.
        kendall_tau: rank correlation (tau-b) between predicted and measured latency.
    """

    n: int
    within5: float
    within10: float
    mape: float
    rmse_ms: float
    kendall_tau: float

    @property
    def poor(self) -> bool:
        return self.within10 < POOR_WITHIN10

    def to_dict(self) -> dict[str, Any]:
        return {**_finite(asdict(self)), "poor": self.poor}


def kendall_tau(a: np.ndarray, b: np.ndarray, *, chunk: int = 2048) -> float:
    """Kendall's tau-b of two equally long vectors (handles ties), in O(n^2) numpy.

    Chunked over rows so memory stays at `chunk * n` even for tens of thousands of points.
    Returns NaN when fewer than two points or when either vector is constant.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"kendall_tau: shapes differ, got {x.shape} and {y.shape}")
    n = x.size
    if n < 2:
        return float("nan")
    concordant = 0.0
    tied_x = 0.0
    tied_y = 0.0
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dx = np.sign(x[start:stop, None] - x[None, :])
        dy = np.sign(y[start:stop, None] - y[None, :])
        concordant += float((dx * dy).sum())
        tied_x += float((dx == 0).sum())
        tied_y += float((dy == 0).sum())
        total += float(dx.size)
    # the diagonal (i == j) counts as a tie in both; remove it, then halve (pairs counted twice)
    pairs = (total - n) / 2
    untied_x = pairs - (tied_x - n) / 2
    untied_y = pairs - (tied_y - n) / 2
    if untied_x <= 0 or untied_y <= 0:
        return float("nan")
    return float((concordant / 2) / np.sqrt(untied_x * untied_y))


def quality(predicted: np.ndarray, measured: np.ndarray) -> QualityMetrics:
    """Metrics of `predicted` against `measured` latencies (both in ms, same order)."""
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    true = np.asarray(measured, dtype=np.float64).ravel()
    if pred.shape != true.shape or true.size == 0:
        raise ValueError(
            f"quality: expected two equal non-empty vectors, got {pred.shape}, {true.shape}"
        )
    rel = np.abs(pred - true) / np.maximum(true, 1e-12)
    return QualityMetrics(
        n=int(true.size),
        within5=float(np.mean(rel <= 0.05)),
        within10=float(np.mean(rel <= 0.10)),
        mape=float(100.0 * rel.mean()),
        rmse_ms=float(np.sqrt(np.mean((pred - true) ** 2))),
        kendall_tau=kendall_tau(pred, true),
    )


@dataclass(frozen=True)
class NoiseFloor:
    """How well the device agrees with itself: the best any predictor can hope for.

    Attributes:
        n_pairs: subnets measured twice, at different times.
        within5: share of those whose two medians are within +-5 % of each other.
        within10: the same within +-10 %.
        mape: mean absolute percentage difference between the two medians.
        median_rel_iqr: median over all measured subnets of IQR / median of their repeats.
    """

    n_pairs: int
    within5: float
    within10: float
    mape: float
    median_rel_iqr: float

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def noise_floor(
    first: Sequence[float], second: Sequence[float], rel_iqr: Sequence[float]
) -> NoiseFloor:
    """Summarise repeated measurements (`first[i]` and `second[i]` are the same subnet)."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    spread = np.asarray(rel_iqr, dtype=np.float64)
    iqr = float(np.median(spread)) if spread.size else float("nan")
    if a.size == 0:
        nan = float("nan")
        return NoiseFloor(0, nan, nan, nan, iqr)
    rel = np.abs(a - b) / np.maximum(a, 1e-12)
    return NoiseFloor(
        n_pairs=int(a.size),
        within5=float(np.mean(rel <= 0.05)),
        within10=float(np.mean(rel <= 0.10)),
        mape=float(100.0 * rel.mean()),
        median_rel_iqr=iqr,
    )
