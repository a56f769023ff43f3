"""Search vocabulary: objectives, constraints, candidates, Pareto sorting, searcher registry.

Every searcher works on any registered `SearchSpace` and any objective functions: it proposes
subnets and hands them to an `Evaluator` (see `nas.search.evaluator`), which checks cheap
constraints first, evaluates the rest once per subnet and records every evaluation.

Dominance (all objectives turned into minimisation): `a` dominates `b` when `a` is no worse
in every objective and strictly better in one. With constraints, Deb's rule applies first: a
feasible candidate dominates an infeasible one, and of two infeasible ones the one with the
smaller total violation dominates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from nas.errors import ConfigError

if TYPE_CHECKING:
    from nas.search.evaluator import Evaluator
    from search_spaces.base import SearchSpace

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Objective:
    """A metric of subnets, and whether the search wants it small or large.

    Args:
        name: metric name, as stored in trials and outputs (`top1`, `latency_ms`, `macs`).
        direction: "minimize" or "maximize".
        evaluate: batched scorer, `archs -> float array of len(archs)`.
        cheap: True for metrics that cost (almost) nothing (MACs, params, predicted latency);
            constraints on cheap metrics are checked before any expensive metric is computed.
        unit: shown on plot axes and tables ("%", "ms", "M").
    """

    name: str
    direction: Direction
    evaluate: Callable[[Sequence[Mapping[str, Any]]], np.ndarray]
    cheap: bool = False
    unit: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ConfigError(
                f"objective '{self.name}': expected direction 'minimize' or 'maximize', "
                f"got '{self.direction}'"
            )

    @property
    def sign(self) -> float:
        """+1 for minimised metrics, -1 for maximised ones (multiply to get a cost)."""
        return 1.0 if self.direction == "minimize" else -1.0


@dataclass(frozen=True)
class Constraint:
    """A bound on one metric: `min <= value <= max` (either side optional).

    Args:
        metric: the metric's name (an objective or an extra metric of the evaluator).
        max: upper bound (inclusive), or None.
        min: lower bound (inclusive), or None.
    """

    metric: str
    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ConfigError(f"constraint on '{self.metric}': expected a max or a min bound")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ConfigError(
                f"constraint on '{self.metric}': `min <= max` must hold, "
                f"got min={self.min}, max={self.max}"
            )

    def violation(self, value: float) -> float:
        """How far `value` lies outside the bounds, relative to the bound (0 when satisfied)."""
        if math.isnan(value):
            return math.inf
        if self.max is not None and value > self.max:
            return (value - self.max) / max(abs(self.max), 1e-12)
        if self.min is not None and value < self.min:
            return (self.min - value) / max(abs(self.min), 1e-12)
        return 0.0

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """One scored subnet.

    `values` holds every metric computed for it; an infeasible candidate rejected on cheap
    metrics has only those (no accuracy was ever computed for it).
    """

    arch: Mapping[str, Any]
    arch_id: str
    values: Mapping[str, float]
    violation: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.violation == 0.0


def costs(candidates: Sequence[Candidate], objectives: Sequence[Objective]) -> np.ndarray:
    """An (n, m) float matrix of objective values turned into costs (smaller is better)."""
    matrix = np.empty((len(candidates), len(objectives)), dtype=np.float64)
    for j, objective in enumerate(objectives):
        matrix[:, j] = [objective.sign * c.values[objective.name] for c in candidates]
    return matrix


def non_dominated_sort(points: np.ndarray, *, limit: int | None = None) -> list[np.ndarray]:
    """Fronts of an (n, m) cost matrix, best first, as arrays of row indices.

    Vectorised O(n^2 m): fine for populations of a few hundred, which is all NSGA-II sorts.

    Args:
        points: costs (smaller is better).
        limit: stop once the fronts returned hold at least this many rows (NSGA-II survival
            needs only as many fronts as fill the population).
    """
    n = points.shape[0]
    if n == 0:
        return []
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    dominates = np.asarray(le & lt, dtype=np.int32)  # dominates[i, j]: i dominates j
    dominated_by = dominates.sum(axis=0)
    fronts: list[np.ndarray] = []
    remaining = np.ones(n, dtype=bool)
    taken = 0
    while remaining.any() and (limit is None or taken < limit):
        front = np.flatnonzero(remaining & (dominated_by == 0))
        fronts.append(front)
        taken += front.size
        remaining[front] = False
        dominated_by = dominated_by - dominates[front].sum(axis=0)
        dominated_by[~remaining] = -1  # never picked again
    return fronts


def first_front(points: np.ndarray) -> np.ndarray:
    """Row indices of the non-dominated rows of an (n, m) cost matrix (ties all kept).

    Two objectives: one sort and a sweep, O(n log n). More: blockwise O(n^2 m) comparisons.
    """
    n = points.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if points.shape[1] == 2:
        order = np.lexsort((points[:, 1], points[:, 0]))
        keep, best_y, last = [], np.inf, None
        for i in order:
            x, y = points[i]
            if y < best_y or (last is not None and x == last[0] and y == last[1]):
                keep.append(i)
                best_y, last = min(best_y, y), (x, y)
        return np.sort(np.asarray(keep, dtype=np.int64))
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, 256):
        block = points[start : start + 256]
        le = (points[:, None, :] <= block[None, :, :]).all(axis=2)
        lt = (points[:, None, :] < block[None, :, :]).any(axis=2)
        dominated[start : start + 256] = (le & lt).any(axis=0)
    return np.flatnonzero(~dominated)


def constrained_fronts(
    points: np.ndarray, violations: np.ndarray, *, limit: int | None = None
) -> list[np.ndarray]:
    """Fronts under constraint domination: feasible fronts first, then infeasible by violation.

    With `limit`, stops once the fronts hold at least `limit` rows.
    """
    feasible = np.flatnonzero(violations == 0)
    fronts = [feasible[f] for f in non_dominated_sort(points[feasible], limit=limit)]
    if limit is not None and sum(f.size for f in fronts) >= limit:
        return fronts
    infeasible = np.flatnonzero(violations > 0)
    for level in np.unique(violations[infeasible]):
        fronts.append(infeasible[violations[infeasible] == level])
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of an (n, m) cost matrix (boundary rows: inf)."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        column = points[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def pareto_front(
    candidates: Sequence[Candidate], objectives: Sequence[Objective]
) -> list[Candidate]:
    """The feasible non-dominated candidates, sorted by the first objective (best first).

    Candidates with equal objective values are all kept (they are different subnets).
    """
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        return []
    points = costs(feasible, objectives)
    front = first_front(points)
    ordered = sorted(front.tolist(), key=lambda i: (points[i].tolist(), feasible[i].arch_id))
    return [feasible[i] for i in ordered]


class Searcher(Protocol):
    """A search algorithm.

    Lifecycle: the factory registered under a name builds it from keyword options
    (`population`, ...); `run` proposes subnets to `evaluator` until `evaluator.done`, drawing
    all randomness from `seed`. Results are read from the evaluator (every evaluated candidate),
    so a searcher only decides *what* to evaluate.
    """

    def run(self, space: SearchSpace, evaluator: Evaluator, *, seed: int) -> None: ...
