"""Lookup table plus a learned residual: `lut(x) * exp(ridge(x))`.

The table gets the bulk right from first principles (each block's own time); what it misses
(framework overhead between blocks, cache effects that depend on neighbours and resolution) is
a smooth multiplicative correction, which a penalised linear model on the log ratio learns from
far fewer subnets than a model of the whole latency would need.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Features, LatencyPredictor, register_predictor
from predictors.lut import LookupTablePredictor
from predictors.ridge import fit_ridge, linear_predict


@register_predictor("residual")
class ResidualPredictor(LatencyPredictor):
    """Fitted lookup table times `exp(linear correction on [encode | block counts])`."""

    needs_blocks = True

    def __init__(self) -> None:
        self.lut = LookupTablePredictor()
        self.coef = np.zeros(0)
        self.intercept = 0.0
        self.alpha = 0.0

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        y = np.asarray(latency_ms, dtype=np.float64)
        self.lut.fit(features, y, block_ms=block_ms)
        base = np.maximum(self.lut.predict(features), 1e-9)
        target = np.log(y / base)
        self.coef, self.intercept, self.alpha = fit_ridge(
            features.matrix(), target, np.ones_like(target)
        )

    def predict(self, features: Features) -> np.ndarray:
        log_ratio = linear_predict(features, self.coef, self.intercept)
        return np.asarray(self.lut.predict(features) * np.exp(log_ratio), dtype=np.float64)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        lut_arrays, lut_params = self.lut.state()
        arrays = {"coef": self.coef, **{f"lut.{k}": v for k, v in lut_arrays.items()}}
        return arrays, {"intercept": self.intercept, "alpha": self.alpha, "lut": lut_params}

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], params: dict[str, Any]
    ) -> ResidualPredictor:
        predictor = cls()
        lut_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("lut.")}
        predictor.lut = LookupTablePredictor.from_state(lut_arrays, params["lut"])
        predictor.coef = np.asarray(arrays["coef"], dtype=np.float64)
        predictor.intercept = float(params["intercept"])
        predictor.alpha = float(params["alpha"])
        return predictor
