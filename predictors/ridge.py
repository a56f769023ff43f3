"""Ridge regression on the architecture encoding and block counts, in plain numpy.

Latency is close to additive over executed blocks, so a linear model on `[encode | block
counts]` is a strong baseline; rows are weighted by 1/latency^2 so that the fit minimises
relative error. The penalty is chosen by exact leave-one-out error over a grid (one SVD).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Features, LatencyPredictor, register_predictor

ALPHAS = tuple(float(a) for a in np.logspace(-6, 3, 28))


def fit_ridge(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, alphas: tuple[float, ...] = ALPHAS
) -> tuple[np.ndarray, float, float]:
    """Weighted ridge with the penalty picked by leave-one-out error.

    Columns are standardised first (so one penalty suits all), constant columns dropped.

    Returns:
        `(coef, intercept, alpha)` on the original (unstandardised) columns.
    """
    w = weight / weight.sum()
    mean = w @ x
    centred = x - mean
    scale = np.sqrt(w @ centred**2)
    keep = scale > 1e-12
    z = centred[:, keep] / scale[keep]
    y_mean = float(w @ y)
    root = np.sqrt(w)
    u, s, vt = np.linalg.svd(z * root[:, None], full_matrices=False)
    uty = u.T @ ((y - y_mean) * root)
    best: tuple[float, float] = (np.inf, alphas[0])
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty)
        hat = (u**2) @ shrink
        loo = ((y - y_mean) * root - fitted) / np.maximum(1.0 - hat, 1e-9)
        error = float(np.sum(loo**2))
        if error < best[0]:
            best = (error, alpha)
    alpha = best[1]
    beta = vt.T @ (s / (s**2 + alpha) * uty)
    coef = np.zeros(x.shape[1])
    coef[keep] = beta / scale[keep]
    intercept = y_mean - float(mean @ coef)
    return coef, intercept, alpha


def linear_predict(features: Features, coef: np.ndarray, intercept: float) -> np.ndarray:
    """`[encoded | counts] @ coef + intercept` without building the concatenated matrix."""
    dim = features.encoded.shape[1]
    weights = coef.astype(np.float32)
    out = features.encoded @ weights[:dim] + features.counts @ weights[dim:]
    return out.astype(np.float64) + intercept


@register_predictor("ridge")
class RidgePredictor(LatencyPredictor):
    """Linear latency model on `[encode | block counts]` with a leave-one-out-tuned penalty."""

    def __init__(self) -> None:
        self.coef = np.zeros(0)
        self.intercept = 0.0
        self.alpha = 0.0

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        y = np.asarray(latency_ms, dtype=np.float64)
        self.coef, self.intercept, self.alpha = fit_ridge(features.matrix(), y, y**-2.0)

    def predict(self, features: Features) -> np.ndarray:
        # two float32 products instead of one on a concatenated float64 copy: no design matrix
        # is allocated (float32 keeps ~7 significant digits, far below measurement noise)
        return linear_predict(features, self.coef, self.intercept)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"coef": self.coef}, {"intercept": self.intercept, "alpha": self.alpha}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> RidgePredictor:
        predictor = cls()
        predictor.coef = np.asarray(arrays["coef"], dtype=np.float64)
        predictor.intercept = float(params["intercept"])
        predictor.alpha = float(params["alpha"])
        return predictor
