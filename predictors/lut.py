"""Per-block lookup table (Once-for-All / FBNet style) with a fitted overhead term.

The table maps each block key (any string: an OFA block at a shape, or a DARTS operation on an
edge shape) to its measured latency. A subnet's latency is `a * sum(table[keys]) + b`: blocks
timed alone miss the framework's per-call overhead and the cache effects of running in a
sequence, and `a`, `b` (fitted on measured whole subnets) absorb most of that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import (
    Features,
    LatencyPredictor,
    NotApplicableError,
    register_predictor,
    weighted_lstsq,
)


def lut_sum(counts: np.ndarray, block_ms: np.ndarray) -> np.ndarray:
    """Sum of block latencies per row; unmeasured (NaN) blocks must not be used."""
    table = np.nan_to_num(block_ms, nan=0.0).astype(counts.dtype)
    return np.asarray(counts @ table, dtype=np.float64)


def check_table(counts: np.ndarray, block_ms: np.ndarray | None) -> np.ndarray:
    """The table, or `NotApplicableError` when it is missing or lacks a used block."""
    if block_ms is None or block_ms.size == 0:
        raise NotApplicableError("no per-block timings: the lookup table needs block measurements")
    if block_ms.shape[0] != counts.shape[1]:
        raise NotApplicableError(
            f"block table has {block_ms.shape[0]} entries, features have {counts.shape[1]} keys"
        )
    used = counts.sum(axis=0) > 0
    missing = int(np.count_nonzero(used & ~np.isfinite(block_ms)))
    if missing:
        raise NotApplicableError(f"{missing} block keys used by the subnets have no timing")
    return np.asarray(block_ms, dtype=np.float64)


@register_predictor("lut")
class LookupTablePredictor(LatencyPredictor):
    """`latency = scale * sum of per-block table entries + overhead_ms`.

    Args:
        fit_overhead: fit `scale` and `overhead_ms` on measured subnets (relative least
            squares); when False, predict the plain table sum.
    """

    needs_blocks = True

    def __init__(self, *, fit_overhead: bool = True) -> None:
        self.fit_overhead = fit_overhead
        self.table = np.zeros(0)
        self.scale = 1.0
        self.overhead_ms = 0.0

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        self.table = check_table(features.counts, block_ms)
        total = lut_sum(features.counts, self.table)
        if self.fit_overhead:
            y = np.asarray(latency_ms, dtype=np.float64)
            columns = np.stack([total, np.ones_like(total)], axis=1)
            # weights 1/y^2 minimise relative error, which is what +-10 % shares measure
            self.scale, self.overhead_ms = (float(v) for v in weighted_lstsq(columns, y, y**-2.0))

    def predict(self, features: Features) -> np.ndarray:
        return self.scale * lut_sum(features.counts, self.table) + self.overhead_ms

    def lookup(self, index: np.ndarray) -> np.ndarray:
        """Scaled table entries for key indices (e.g. a DARTS edge's candidate operations).

        A differentiable expected latency is then `sum(softmax(alpha) * lookup(ops))` per edge
        plus `overhead_ms` once.
        """
        return np.asarray(self.scale * np.nan_to_num(self.table[index], nan=0.0))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        params = {
            "fit_overhead": self.fit_overhead,
            "scale": self.scale,
            "overhead_ms": self.overhead_ms,
        }
        return {"table": self.table}, params

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], params: dict[str, Any]
    ) -> LookupTablePredictor:
        predictor = cls(fit_overhead=bool(params["fit_overhead"]))
        predictor.table = np.asarray(arrays["table"], dtype=np.float64)
        predictor.scale = float(params["scale"])
        predictor.overhead_ms = float(params["overhead_ms"])
        return predictor
