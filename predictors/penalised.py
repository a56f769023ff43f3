"""Weighted ridge regression with unpenalised columns, its penalty chosen by nested CV.

Two needs of the whole-subnet predictors meet here:

- Some columns must not be shrunk: the intercept, and in transfer the source device's
  prediction (the prior that carries most of the signal). They are projected out exactly
  (Frisch-Waugh), and only the remaining columns are penalised.
- With a hundred measurements or fewer, the penalty (and which columns to use) decides most
  of the held-out error, and a leave-one-out formula cannot compare column sets. So the choice
  is made by an inner K-fold cross-validation inside the training data (seeded), and the outer
  cross-validation of `predictors.select` judges the result: nested cross-validation.

Errors are relative (rows weighted by 1/latency^2, folds scored by squared relative error),
because a +-10 % share is what the predictors are judged by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 17))
INNER_FOLDS = 5
# a held-out subnet off by more than 100 % counts as 100 %: one broken row must not decide
# the penalty for all the others
MAX_SQUARED_RELATIVE = 1.0


@dataclass(frozen=True)
class LinearFit:
    """`free @ coef_free + penalised @ coef_pen` (original, unstandardised columns)."""

    coef_free: np.ndarray
    coef_pen: np.ndarray
    alpha: float

    def predict(self, free: np.ndarray, penalised: np.ndarray) -> np.ndarray:
        return np.asarray(free @ self.coef_free + penalised @ self.coef_pen, dtype=np.float64)


def ridge_path(
    free: np.ndarray, penalised: np.ndarray, y: np.ndarray, weight: np.ndarray,
    alphas: Sequence[float] = ALPHAS,
) -> list[LinearFit]:
    """Weighted ridge fits for every penalty in `alphas` (one SVD for all).

    Args:
        free: `(n, f)` unpenalised columns; include a column of ones for an intercept.
        penalised: `(n, p)` columns shrunk towards zero; each is scaled to unit weighted
            spread first, so one penalty suits all (constant columns get coefficient 0).
        y: targets.
        weight: per-row weights (minimises `sum weight * residual^2 + alpha * |beta|^2`).
        alphas: penalties, on the scale of `n` rows of unit weight.
    """
    w = np.asarray(weight, dtype=np.float64)
    root = np.sqrt(w * len(w) / w.sum())[:, None]
    centred = penalised - (w @ penalised) / w.sum()
    scale = np.sqrt((w @ centred**2) / w.sum())
    keep = scale > 1e-12 * max(1.0, float(np.abs(penalised).max(initial=0.0)))
    a = free * root
    b = penalised[:, keep] / scale[keep] * root
    t = y * root[:, 0]
    q, _ = np.linalg.qr(a)
    b_res = b - q @ (q.T @ b)
    t_res = t - q @ (q.T @ t)
    u, s, vt = np.linalg.svd(b_res, full_matrices=False)
    uty = u.T @ t_res
    fits = []
    for alpha in alphas:
        gamma = vt.T @ (s / (s**2 + alpha) * uty)
        beta, *_ = np.linalg.lstsq(a, t - b @ gamma, rcond=None)
        coef_pen = np.zeros(penalised.shape[1])
        coef_pen[keep] = gamma / scale[keep]
        fits.append(LinearFit(np.asarray(beta), coef_pen, float(alpha)))
    return fits


def inner_folds(n: int, *, seed: int, folds: int = INNER_FOLDS) -> list[np.ndarray]:
    """Held-out index arrays of a seeded K-fold split (leave-one-out below 2K rows)."""
    return seeded_folds(n, n if n < 2 * folds else folds, seed=seed)


def seeded_folds(n: int, count: int, *, seed: int) -> list[np.ndarray]:
    """`count` sorted index arrays partitioning `range(n)`, drawn from `seed`."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, count)]


def squared_relative(predicted: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(np.minimum(((predicted - y) / y) ** 2, MAX_SQUARED_RELATIVE))


@dataclass(frozen=True)
class Choice:
    """The winner of `choose`: candidate index, penalty, and its inner-CV error."""

    candidate: int
    alpha: float
    error: float


def choose(
    candidates: Sequence[tuple[np.ndarray, np.ndarray]], y: np.ndarray, *,
    alphas: Sequence[float] = ALPHAS, seed: int = 0, folds: int = INNER_FOLDS,
) -> Choice:
    """The (column set, penalty) with the lowest inner-CV mean squared relative error.

    Args:
        candidates: `(free, penalised)` column pairs over the same rows.
        y: positive targets (latencies); rows are weighted by `1 / y^2`.
        alphas: penalties tried for every candidate.
        seed: seeds the inner split, so the choice is a pure function of the data and seed.
        folds: inner folds.

    Ties go to the earlier candidate, then to the larger penalty (the simpler model).
    """
    parts = inner_folds(len(y), seed=seed, folds=folds)
    best = Choice(0, float(alphas[-1]), np.inf)
    for index, (free, penalised) in enumerate(candidates):
        errors = np.zeros(len(alphas))
        for part in parts:
            train = np.setdiff1d(np.arange(len(y)), part)
            fits = ridge_path(free[train], penalised[train], y[train], y[train] ** -2.0, alphas)
            for k, fit in enumerate(fits):
                errors[k] += squared_relative(fit.predict(free[part], penalised[part]),
                                              y[part]).sum()
        errors /= len(y)
        # scan from the largest penalty so that a tie keeps the more regularised model
        for k in reversed(range(len(alphas))):
            if errors[k] < best.error - 1e-12:
                best = Choice(index, float(alphas[k]), float(errors[k]))
    return best


def fit_chosen(
    candidates: Sequence[tuple[np.ndarray, np.ndarray]], y: np.ndarray, choice: Choice
) -> LinearFit:
    """Refit the chosen candidate on all rows at the chosen penalty."""
    free, penalised = candidates[choice.candidate]
    return ridge_path(free, penalised, y, y**-2.0, [choice.alpha])[0]
