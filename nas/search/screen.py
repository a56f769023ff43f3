"""Online accuracy-predictor screening (`nas search --accuracy predictor` or `proxy:NAME`).

As Once-for-All's accuracy predictor and DyNAS-T's predictor-in-the-loop search do, a cheap
model of accuracy stands in front of the expensive data evaluation: a ridge regression on
`space.encode(arch)`, refitted on every subnet evaluated so far. After `warmup` evaluations,
a candidate is evaluated on data only when its *optimistic* predicted accuracy (prediction +
`margin` x the model's leave-one-out error) would put it on the current Pareto front; the
others are skipped (not scored, not recorded, no budget used). The best-predicted candidate
of each batch is always evaluated, so the model keeps learning where the search goes.

`ProxyScreen` (`--accuracy proxy:NAME`) is the same screen with another feature: a zero-cost
proxy of the subnet (issue 20's second use of proxies) instead of its encoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import arch_id
from nas.search.base import Candidate, Objective, first_front
from search_spaces.base import SearchSpace

if TYPE_CHECKING:
    from nas.rank.scoring import ProxyScorer


class AccuracyScreen:
    """Decides which candidates are worth an expensive accuracy evaluation.

    Args:
        space: encodes archs into features.
        metric: the expensive maximised metric it predicts (top-1).
        warmup: evaluations before any screening.
        margin: optimism, in leave-one-out RMSEs, added to predictions.
        ridge: L2 penalty of the regression.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        metric: str = "top1",
        warmup: int = 30,
        margin: float = 1.0,
        ridge: float = 1.0,
    ) -> None:
        self.space, self.metric, self.warmup = space, metric, warmup
        self.margin, self.ridge = margin, ridge
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self._model: tuple[np.ndarray, float, float] | None = None  # weights, bias, loo rmse
        self.skipped = 0

    def observe(self, archs: Sequence[Mapping[str, Any]], values: np.ndarray) -> None:
        """Add evaluated subnets to the training set (NaN values are ignored)."""
        for arch, value in zip(archs, values, strict=True):
            features = self.features(arch)
            if np.isfinite(value) and np.isfinite(features).all():
                self._x.append(features)
                self._y.append(float(value))
        self._model = None

    def features(self, arch: Mapping[str, Any]) -> np.ndarray:
        """What the model reads of a subnet: its encoding (`space.encode`)."""
        return self.space.encode(arch).astype(np.float64)

    def _fit(self) -> tuple[np.ndarray, float, float]:
        if self._model is None:
            x, y = np.stack(self._x), np.asarray(self._y)
            mean_x, mean_y = x.mean(axis=0), y.mean()
            xc = x - mean_x
            gram = xc.T @ xc + self.ridge * np.eye(x.shape[1])
            inverse = np.linalg.inv(gram)
            weights = inverse @ xc.T @ (y - mean_y)
            residual = y - mean_y - xc @ weights
            # leave-one-out residuals of ridge in closed form: r_i / (1 - h_ii)
            leverage = np.einsum("ij,jk,ik->i", xc, inverse, xc)
            loo = residual / np.clip(1.0 - leverage, 1e-6, None)
            rmse = float(np.sqrt(np.mean(loo**2)))
            self._model = (weights, float(mean_y - mean_x @ weights), rmse)
        return self._model

    def predict(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        weights, bias, _ = self._fit()
        x = np.stack([self.features(a) for a in archs])
        finite = np.isfinite(x).all(axis=1)
        # a subnet whose feature is undefined (a degenerate network's proxy) predicts worst
        return np.where(finite, np.where(finite[:, None], x, 0.0) @ weights + bias, -np.inf)

    def promising(
        self,
        archs: Sequence[Mapping[str, Any]],
        cheap: Sequence[Mapping[str, float]],
        evaluated: Sequence[Candidate],
        objectives: Sequence[Objective],
    ) -> list[bool]:
        """Whether each arch may reach the front of `evaluated` (all True during warm-up)."""
        others = [o for o in objectives if o.name != self.metric]
        if len(self._y) < self.warmup or any(not o.cheap for o in others):
            return [True] * len(archs)
        _, _, rmse = self._fit()
        optimistic = self.predict(archs) + self.margin * rmse
        sign = {o.name: o.sign for o in objectives}
        known = [c for c in evaluated if c.feasible]
        front_costs = np.array(
            [[sign[o.name] * c.values[o.name] for o in objectives] for c in known]
        ).reshape(len(known), len(objectives))
        if known:
            front_costs = front_costs[first_front(front_costs)]
        verdicts = []
        for value, values in zip(optimistic, cheap, strict=True):
            point = np.array(
                [
                    sign[o.name] * (value if o.name == self.metric else values[o.name])
                    for o in objectives
                ]
            )
            dominated = (
                bool(
                    ((front_costs <= point).all(axis=1) & (front_costs < point).any(axis=1)).any()
                )
                if known
                else False
            )
            verdicts.append(not dominated)
        if not any(verdicts):
            verdicts[int(np.argmax(optimistic))] = True
        self.skipped += verdicts.count(False)
        return verdicts


class ProxyScreen(AccuracyScreen):
    """The screen of `--accuracy proxy:NAME`: a least-squares line from a zero-cost proxy to the
    accuracy evaluated so far stands in for the predictor's encoding model.

    The feature is sign(v) log(1 + |v|) of the proxy's value v (proxies such as synflow span
    dozens of decades); values are computed once per subnet. A proxy of -inf (a degenerate
    network) predicts the worst accuracy.

    Args:
        scorer: computes the proxy (the run's supernet and data, see `nas.rank.scoring`).
        proxy: a registered proxy name.
        metric, warmup, margin: as `AccuracyScreen`'s.
    """

    def __init__(
        self, scorer: ProxyScorer, proxy: str, *, metric: str = "top1", warmup: int = 30,
        margin: float = 1.0,
    ) -> None:
        # one standardless feature: a negligible ridge keeps its slope unshrunk
        super().__init__(scorer.space, metric=metric, warmup=warmup, margin=margin, ridge=1e-9)
        self.scorer, self.proxy = scorer, proxy
        self._values: dict[str, float] = {}

    def features(self, arch: Mapping[str, Any]) -> np.ndarray:
        key = arch_id(arch)
        if key not in self._values:
            value = self.scorer.score(arch, [self.proxy])[self.proxy].value
            self._values[key] = (math.copysign(math.log1p(abs(value)), value)
                                 if math.isfinite(value) else -math.inf)
        return np.array([self._values[key]])
