"""NSGA-II (Deb et al., 2002) on any search space, with constraint domination.

Each generation: binary tournaments on (front rank, crowding distance) pick parents;
`space.crossover` then `space.mutate` make children that are valid by construction; children
failing a cheap constraint are discarded *before* evaluation, so no accuracy is ever computed
for an infeasible subnet; parents and children are merged and the best `population` survive by
non-dominated sorting (feasible fronts first, infeasible ones by violation) and crowding.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from nas.search._registry import register_searcher
from nas.search.base import (
    Candidate,
    constrained_fronts,
    costs,
    crowding_distance,
)
from nas.search.evaluator import Evaluator
from nas.search.operators import (
    evaluate_start,
    feasible_novel,
    initial_population,
    mutate_until_changed,
)
from search_spaces.base import SearchSpace


def rank_and_crowding(
    candidates: Sequence[Candidate], evaluator: Evaluator, *, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Front index (0 = best) and crowding distance of each candidate.

    With `limit`, only the fronts needed to hold `limit` candidates are ranked; the rest get
    the worst rank.
    """
    points = costs(candidates, evaluator.objectives)
    violations = np.array([c.violation for c in candidates])
    rank = np.full(len(candidates), len(candidates), dtype=np.int64)
    crowd = np.zeros(len(candidates))
    for level, front in enumerate(constrained_fronts(points, violations, limit=limit)):
        rank[front] = level
        crowd[front] = crowding_distance(points[front])
    return rank, crowd


def survive(candidates: Sequence[Candidate], evaluator: Evaluator, size: int) -> list[Candidate]:
    """The `size` best candidates by rank, then crowding (ties keep the earlier candidate)."""
    rank, crowd = rank_and_crowding(candidates, evaluator, limit=size)
    order = np.lexsort((np.arange(len(candidates)), -crowd, rank))
    return [candidates[i] for i in order[:size]]


@register_searcher("nsga2")
class NSGA2Searcher:
    """NSGA-II with constraint domination.

    Args:
        population: parents kept per generation (and children made per generation).
        mutation_prob: per-choice resampling probability passed to `space.mutate`; a child
            always differs from its parents in at least one choice, so a low value means
            "change one or two choices", which beat 0.1-0.2 on the nb201 benchmark
            (bench/bench_search.py).
        crossover_prob: probability that a child is a crossover of two parents.
    """

    def __init__(
        self, *, population: int = 50, mutation_prob: float = 0.05, crossover_prob: float = 0.9
    ) -> None:
        self.population = population
        self.mutation_prob = mutation_prob
        self.crossover_prob = crossover_prob

    def run(self, space: SearchSpace, evaluator: Evaluator, *, seed: int) -> None:
        rng = np.random.default_rng(seed)
        seen: set[str] = set()
        size = min(self.population, evaluator.remaining)
        start = initial_population(space, evaluator, rng, size=size, seen=seen)
        parents = evaluate_start(evaluator, start, population=self.population)
        if len(parents) > self.population:
            parents = survive(parents, evaluator, self.population)
        while not evaluator.done and parents:
            rank, crowd = rank_and_crowding(parents, evaluator)
            count = min(evaluator.share(self.population), evaluator.remaining)
            children = feasible_novel(
                partial(self._children, space, parents, rank, crowd, rng),
                evaluator,
                count=count,
                seen=seen,
            )
            if not children:
                break  # the reachable feasible space is exhausted
            offspring = [c for c in evaluator.evaluate(children) if c.arch_id in evaluator.used]
            # on a shared study, the other workers' results of this generation compete too
            offspring += evaluator.take_foreign()
            parents = survive(parents + offspring, evaluator, self.population)

    def _children(
        self,
        space: SearchSpace,
        parents: Sequence[Candidate],
        rank: np.ndarray,
        crowd: np.ndarray,
        rng: np.random.Generator,
        count: int,
        attempt: int = 0,
    ) -> list[dict[str, Any]]:
        # binary tournaments, vectorised: lower rank wins, then larger crowding distance
        a = rng.integers(len(parents), size=(count, 2))
        b = rng.integers(len(parents), size=(count, 2))
        a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
        picks = np.where(a_wins, a, b)
        cross = rng.random(count) < self.crossover_prob
        # children already seen come back in later rounds: mutate harder each round
        prob = min(0.5, self.mutation_prob * 2**attempt)
        children = []
        for (i, j), do_cross in zip(picks, cross, strict=True):
            child = (
                space.crossover(parents[i].arch, parents[j].arch, rng)
                if do_cross and i != j
                else dict(parents[i].arch)
            )
            children.append(mutate_until_changed(space, child, rng, prob=prob))
        return children
