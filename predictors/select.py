"""Fit every applicable predictor, judge each on held-out subnets, keep the best.

Held-out quality is cross-validated: the measured subnets are split at random (seeded) into
`1 / holdout` folds; each fold is predicted by the predictor fitted on the other folds, so every
subnet is held out exactly once and the metrics use all of them (a single 25 % split of a few
hundred noisy subnets moved the +-10 % share by 10 points between seeds). Then each predictor is
refitted on all measurements for use, so the figures estimate the quality of the saved model
(slightly pessimistically).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import ConfigError
from predictors._threads import one_blas_thread
from predictors.base import (
    PREDICTORS,
    Features,
    LatencyPredictor,
    NotApplicableError,
    create_predictor,
)
from predictors.penalised import seeded_folds
from predictors.report import QualityMetrics, quality

logger = logging.getLogger(__name__)

# simplest first: on equal held-out quality the earlier (cheaper, more robust) one wins
PREFERENCE = ("lut", "ridge", "structural", "residual", "transfer", "mlp")
MIN_HOLDOUT = 5


@dataclass
class Fitted:
    """One predictor kind after selection.

    Attributes:
        kind: the registry name.
        predictor: fitted on all measurements, or None when it could not be fitted.
        holdout: quality on the held-out subnets (None without enough data or when not fitted).
        reason: why it was not fitted, when it was not.
        predicted: each subnet's latency as predicted by the fold that held it out (what
            `holdout` scores; the profile report plots it against the measurements).
    """

    kind: str
    predictor: LatencyPredictor | None
    holdout: QualityMetrics | None
    reason: str | None = None
    predicted: np.ndarray | None = None


@dataclass
class Selection:
    """The fitted kinds and the chosen one; `n_holdout` subnets were each predicted once by a
    model fitted on `n_train` others (0 when there were too few subnets to hold any out)."""

    fitted: list[Fitted]
    chosen: str
    n_train: int
    n_holdout: int

    def get(self, kind: str) -> Fitted:
        return next(item for item in self.fitted if item.kind == kind)


def folds(n: int, *, holdout: float, seed: int) -> list[np.ndarray]:
    """Random held-out index arrays, one per fold; none for data sets too small to split."""
    count = max(2, int(round(1.0 / holdout)))
    if n < count * MIN_HOLDOUT:
        return []
    return seeded_folds(n, count, seed=seed)


def _score(metrics: QualityMetrics | None) -> tuple[float, float]:
    if metrics is None:
        return (-1.0, 0.0)
    # MAPE rounded to 0.01 points: differences below that are noise, and a tie goes to the
    # simpler predictor (earlier in PREFERENCE)
    return (metrics.within10, -round(metrics.mape, 2))


def candidate_kinds(
    kinds: Sequence[str] | None, options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """`kinds` in order of preference; by default every registered kind except those that
    need a source device's predictor and were given none in `options`."""
    given = options or {}
    names = list(kinds) if kinds else [
        name for name in PREDICTORS.names()
        if not PREDICTORS.get(name).needs_prior or "prior" in given.get(name, {})
    ]
    for name in names:
        PREDICTORS.get(name)  # unknown names fail here, listing the valid ones
    return sorted(names, key=lambda k: PREFERENCE.index(k) if k in PREFERENCE else len(PREFERENCE))


def _fit_one(
    kind: str, features: Features, y: np.ndarray, block_ms: np.ndarray | None,
    parts: list[np.ndarray], options: Mapping[str, Any],
) -> Fitted:
    try:
        metrics, predicted = None, None
        if parts:
            predicted = np.empty_like(y)
            for part in parts:
                train = np.setdiff1d(np.arange(len(y)), part)
                trial = create_predictor(kind, **options)
                trial.fit(features.take(train), y[train], block_ms=block_ms)
                predicted[part] = trial.predict(features.take(part))
            metrics = quality(predicted, y)
        final = create_predictor(kind, **options)
        final.fit(features, y, block_ms=block_ms)
        return Fitted(kind, final, metrics, predicted=predicted)
    except NotApplicableError as exc:
        logger.info("predictor %s skipped: %s", kind, exc)
        return Fitted(kind, None, None, str(exc))


def fit_and_select(
    features: Features,
    latency_ms: np.ndarray,
    *,
    block_ms: np.ndarray | None = None,
    kinds: Sequence[str] | None = None,
    force: str | None = None,
    holdout: float = 0.25,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Selection:
    """Fit the predictor `kinds` (default: all registered) and choose one.

    Args:
        features: features of the measured subnets.
        latency_ms: their measured latency.
        block_ms: per-block timings aligned with `features.counts` columns (NaN = unmeasured).
        kinds: which predictor kinds to try.
        force: choose this kind whatever the held-out scores say.
        holdout: share of subnets held out per fold (0.25: 4-fold cross-validation).
        seed: seeds the split (and the stochastic predictors' defaults are seeded too).
        options: constructor options per kind, e.g. `{"transfer": {"prior": prior}}`
            (`predictors.transfer.prior_from_model`); a kind that needs a prior is a default
            candidate only when given one here.
    """
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(y) < 2:
        raise ConfigError(f"expected at least 2 measured subnets to fit predictors, got {len(y)}")
    names = candidate_kinds(kinds, options)
    if force is not None and force not in names:
        names.append(PREDICTORS.get(force).kind)
    parts = folds(len(y), holdout=holdout, seed=seed)
    n_train = len(y) - (len(parts[0]) if parts else 0)
    n_holdout = len(y) if parts else 0
    with one_blas_thread():
        fitted = [_fit_one(kind, features, y, block_ms, parts, (options or {}).get(kind, {}))
                  for kind in names]
    usable = [item for item in fitted if item.predictor is not None]
    if force is not None:
        chosen = next((item for item in usable if item.kind == force), None)
        if chosen is None:
            reason = next(item.reason for item in fitted if item.kind == force)
            raise ConfigError(f"predictor '{force}' was forced but cannot be fitted: {reason}")
        return Selection(fitted, force, n_train, n_holdout)
    if not usable:
        raise ConfigError("no predictor could be fitted: " + "; ".join(
            f"{item.kind}: {item.reason}" for item in fitted))
    best = max(usable, key=lambda item: _score(item.holdout))  # max keeps the first of ties
    return Selection(fitted, best.kind, n_train, n_holdout)


def quick_within10(
    features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None, seed: int = 0
) -> float | None:
    """A cheap running estimate of the best held-out +-10 % share (for progress displays)."""
    if len(latency_ms) < 4 * MIN_HOLDOUT:
        return None
    kinds = ["ridge"] + (["lut", "residual"] if block_ms is not None else [])
    selection = fit_and_select(features, latency_ms, block_ms=block_ms, kinds=kinds, seed=seed)
    best = selection.get(selection.chosen).holdout
    return None if best is None else best.within10
