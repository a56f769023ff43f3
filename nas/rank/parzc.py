"""`parzc`: zero-cost proxies combined by weights learned from a few subnets of known accuracy.

In the spirit of ParZC (Dong et al., "ParZC: Parametric zero-cost proxies for efficient NAS",
2024): a zero-cost proxy's raw value is a poor ranking on its own, but a small model fitted on
a handful of labelled architectures, with a ranking loss rather than a regression one, learns
how much each signal counts. ParZC feeds node-wise proxy statistics to a mixer network with a
Bayesian layer and trains it with a differentiable Kendall tau. This version keeps the parts
that matter with 50 labels and stays small:

- features: the values of naswot, synflow, jacov and snip and the parameter and MAC counts,
  each column replaced by its rank over the whole population being ranked (all of it is
  training-free, so no label is used; ranks also tame synflow's dozens of orders of magnitude
  and naswot's -inf), scaled to [-0.5, 0.5]. ParZC's node-wise statistics would need every
  proxy to report per layer; the space's architecture encoding as extra features measured no
  better (below);
- model: a linear score w . x fitted with the pairwise logistic loss (RankNet; a smooth
  surrogate of Kendall tau like ParZC's DiffKendall) over every pair of labelled subnets with
  different accuracies, plus an L2 penalty; bagged over bootstrap resamples of the labelled
  subnets (the averaged weights stand in for ParZC's Bayesian averaging).

The caller decides which subnets are labelled and must judge the result on the others only
(`nas rank --labels N` does: every scorer's metrics are then computed on the held-out subnets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from nas.errors import ConfigError
from nas.rank.combined import average_ranks

PARZC = "parzc"
# The proxies parzc combines (besides the size counts and the encoding); cheap ones only:
# grasp costs 5-10x the others for a tau no better than snip's.
MEMBERS: tuple[str, ...] = ("naswot", "synflow", "jacov", "snip")
SIZES = ("params", "macs")
# Measured on 254 NB201 cells, 20 random splits of 50 labelled cells (docs/rank.md): held-out
# tau 0.737 at l2 = 0.1, 0.722 at 1, 0.715 at 10; adding the architecture encoding (30 one-hot
# columns) gave the same 0.737, so the features stay the proxies and the sizes.
L2 = 0.1


@dataclass(frozen=True)
class ParzcFit:
    """A fitted combination: feature names, their weights, and the labelled subnets used."""

    names: tuple[str, ...]
    weights: np.ndarray
    labelled: np.ndarray  # indices into the population

    def weight_of(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self.names, self.weights, strict=True)}


def rank_features(columns: Mapping[str, ArrayLike]) -> tuple[tuple[str, ...], np.ndarray]:
    """Each column as its average ranks over the population, centred in [-0.5, 0.5]."""
    names = tuple(columns)
    if not names:
        raise ConfigError("parzc: expected at least one feature column, got none")
    matrix = []
    for name in names:
        values = np.asarray(columns[name], dtype=np.float64).reshape(-1)
        if np.isnan(values).any():
            raise ConfigError(f"parzc: feature '{name}' has NaN values")
        ranks = average_ranks(values)
        matrix.append((ranks - 1) / max(1, values.size - 1) - 0.5)
    return names, np.stack(matrix, axis=1)


def fit_pairwise(
    features: np.ndarray, truth: np.ndarray, *, l2: float = 1.0, steps: int = 300
) -> np.ndarray:
    """Weights w minimising the mean pairwise logistic loss of w . x over ordered pairs + l2|w|^2.

    Newton's method on a convex objective: a few dozen features converge in a few steps.
    """
    order = np.sign(truth[:, None] - truth[None, :])
    i, j = np.nonzero(order > 0)  # pairs with truth_i > truth_j
    if i.size == 0:
        raise ConfigError("parzc: expected labelled subnets of different accuracies, got ties "
                          "only")
    diffs = features[i] - features[j]
    weights = np.zeros(features.shape[1])
    for _ in range(steps):
        margin = diffs @ weights
        p = 1.0 / (1.0 + np.exp(np.clip(margin, -50, 50)))  # sigma(-margin)
        gradient = -(diffs * p[:, None]).mean(axis=0) + 2 * l2 * weights / len(diffs) ** 0.5
        curvature = (diffs * (p * (1 - p))[:, None]).T @ diffs / len(diffs)
        hessian = curvature + 2 * l2 / len(diffs) ** 0.5 * np.eye(len(weights))
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return weights


def fit_parzc(
    columns: Mapping[str, ArrayLike], truth: Sequence[float], labelled: ArrayLike, *,
    seed: int = 0, bags: int = 16, l2: float = L2,
) -> tuple[np.ndarray, ParzcFit]:
    """Fit on the `labelled` subnets' truth; returns every subnet's score and the fit.

    Args:
        columns: feature name -> its value for every subnet of the population (no labels).
        truth: accuracy of the labelled subnets, in the order of `labelled`.
        labelled: indices of the labelled subnets in the population.
        seed: seeds the bootstrap bags.
        bags: bootstrap fits averaged (1: one fit on the labelled subnets as they are).
        l2: the weights' L2 penalty.

    Raises:
        ConfigError: fewer than 2 labelled subnets, a truth of another length, NaN features.
    """
    names, features = rank_features(columns)
    index = np.asarray(labelled, dtype=np.int64).reshape(-1)
    values = np.asarray(truth, dtype=np.float64).reshape(-1)
    if index.size < 2 or values.size != index.size:
        raise ConfigError(f"parzc: expected >= 2 labelled subnets with one truth each, got "
                          f"{index.size} subnets and {values.size} values")
    rng = np.random.default_rng([seed, 0x9A2C])
    fits = []
    for bag in range(max(1, bags)):
        take = np.arange(index.size) if bag == 0 else rng.integers(0, index.size, index.size)
        if np.unique(values[take]).size < 2:
            continue
        fits.append(fit_pairwise(features[index[take]], values[take], l2=l2))
    weights = np.mean(fits, axis=0)
    return features @ weights, ParzcFit(names, weights, index)


def parzc_features(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feature columns of parzc: its member proxies and the size counts."""
    return {name: np.asarray(columns[name]) for name in (*MEMBERS, *SIZES)}


def choose_labelled(n: int, labels: int, rng: np.random.Generator) -> np.ndarray:
    """`labels` distinct indices out of `n`, sorted (the subnets whose truth parzc may use)."""
    if not 2 <= labels < n - 1:
        raise ConfigError(f"--labels: expected 2 to {n - 2} (the rest are judged), got {labels}")
    return np.sort(rng.choice(n, size=labels, replace=False))


__all__ = ["MEMBERS", "PARZC", "ParzcFit", "choose_labelled", "fit_pairwise", "fit_parzc",
           "parzc_features", "rank_features"]
