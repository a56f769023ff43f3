"""A small multi-layer perceptron on `[encode | block counts]`, trained in numpy.

The non-linear predictor: it can learn interactions the linear models miss (a wide expand layer
costs more at a high resolution). Latency is mostly additive over blocks, which a plain MLP on a
few hundred samples learns poorly, so the MLP models the log ratio to a ridge fit:
`ridge(x) * exp(mlp(x))`, starting at zero correction and stopped early on an inner validation
split, so it can only add what the data support. numpy keeps it dependency-free and trivially
serialisable (safetensors); it trains in seconds on one core.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Features, LatencyPredictor, register_predictor
from predictors.ridge import fit_ridge, linear_predict


def _init(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


class _Adam:
    """Adam over a list of arrays, updated in place."""

    def __init__(self, params: list[np.ndarray], lr: float) -> None:
        self.params = params
        self.lr = lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            m_hat = m / (1 - 0.9**self.t)
            v_hat = v / (1 - 0.999**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


@register_predictor("mlp")
class MLPPredictor(LatencyPredictor):
    """Ridge fit times `exp(MLP)`: two hidden ReLU layers, early stopping on an inner split.

    Args:
        hidden: width of both hidden layers.
        epochs: maximum full-batch Adam steps.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.
        seed: seeds initialisation and the inner validation split.
    """

    def __init__(
        self,
        *,
        hidden: int = 32,
        epochs: int = 800,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.arrays: dict[str, np.ndarray] = {}

    def _forward(self, z: np.ndarray, a: dict[str, np.ndarray]) -> list[np.ndarray]:
        h1 = np.maximum(z @ a["w1"] + a["b1"], 0.0)
        h2 = np.maximum(h1 @ a["w2"] + a["b2"], 0.0)
        return [h1, h2, (h2 @ a["w3"] + a["b3"])[:, 0]]

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        rng = np.random.default_rng(self.seed)
        x = features.matrix()
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[std < 1e-12] = 1.0
        z = (x - mean) / std
        y = np.asarray(latency_ms, dtype=np.float64)
        coef, intercept, _ = fit_ridge(x, y, y**-2.0)
        linear = np.maximum(x @ coef + intercept, 1e-6)
        t = np.log(y / linear)
        t_mean, t_std = float(t.mean()), float(t.std() or 1.0)
        target = (t - t_mean) / t_std
        order = rng.permutation(len(t))
        n_val = max(1, len(t) // 8) if len(t) >= 16 else 0
        val, train = order[:n_val], order[n_val:]
        a = {
            "w1": _init(rng, z.shape[1], self.hidden), "b1": np.zeros(self.hidden),
            "w2": _init(rng, self.hidden, self.hidden), "b2": np.zeros(self.hidden),
            "w3": _init(rng, self.hidden, 1) * 0.01, "b3": np.zeros(1),
        }
        best = self._train(a, z, target, train, val)
        self.arrays = {
            **best, "x_mean": mean, "x_std": std, "t_norm": np.array([t_mean, t_std]),
            "ridge_coef": coef, "ridge_intercept": np.array([intercept]),
        }

    def _train(
        self, a: dict[str, np.ndarray], z: np.ndarray, target: np.ndarray,
        train: np.ndarray, val: np.ndarray,
    ) -> dict[str, np.ndarray]:
        names = ["w1", "b1", "w2", "b2", "w3", "b3"]
        opt = _Adam([a[k] for k in names], self.lr)
        zt, yt = z[train], target[train]
        best, best_loss, since = {k: v.copy() for k, v in a.items()}, np.inf, 0
        for _ in range(self.epochs):
            h1, h2, out = self._forward(zt, a)
            d_out = (2.0 / len(yt)) * (out - yt)[:, None]
            g_w3, g_b3 = h2.T @ d_out, d_out.sum(axis=0)
            d_h2 = (d_out @ a["w3"].T) * (h2 > 0)
            g_w2, g_b2 = h1.T @ d_h2, d_h2.sum(axis=0)
            d_h1 = (d_h2 @ a["w2"].T) * (h1 > 0)
            g_w1, g_b1 = zt.T @ d_h1, d_h1.sum(axis=0)
            wd = self.weight_decay
            opt.step([
                g_w1 + wd * a["w1"], g_b1, g_w2 + wd * a["w2"], g_b2, g_w3 + wd * a["w3"], g_b3,
            ])
            if len(val) == 0:
                continue
            loss = float(np.mean((self._forward(z[val], a)[2] - target[val]) ** 2))
            if loss < best_loss - 1e-6:
                best, best_loss, since = {k: v.copy() for k, v in a.items()}, loss, 0
            else:
                since += 1
                if since > 60:  # patience: the validation loss stopped improving
                    break
        return best if len(val) else {k: v.copy() for k, v in a.items()}

    def predict(self, features: Features) -> np.ndarray:
        a = self.arrays
        dim = features.encoded.shape[1]
        # standardisation folded into the first layer, in float32, and split between the two
        # feature blocks: no float64 design matrix is built (prediction speed is a target)
        w1 = (a["w1"] / a["x_std"][:, None]).astype(np.float32)
        b1 = (a["b1"] - (a["x_mean"] / a["x_std"]) @ a["w1"]).astype(np.float32)
        h1 = np.maximum(features.encoded @ w1[:dim] + features.counts @ w1[dim:] + b1, 0.0)
        h2 = np.maximum(h1 @ a["w2"].astype(np.float32) + a["b2"].astype(np.float32), 0.0)
        out = (h2 @ a["w3"].astype(np.float32))[:, 0].astype(np.float64) + a["b3"][0]
        linear = np.maximum(linear_predict(features, a["ridge_coef"], a["ridge_intercept"][0]),
                            1e-6)
        return np.asarray(linear * np.exp(out * a["t_norm"][1] + a["t_norm"][0]))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        params = {
            "hidden": self.hidden, "epochs": self.epochs, "lr": self.lr,
            "weight_decay": self.weight_decay, "seed": self.seed,
        }
        return dict(self.arrays), params

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> MLPPredictor:
        predictor = cls(**params)
        predictor.arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
        return predictor
