"""Regularised (aging) evolution (Real et al., 2019) for the first objective under constraints.

A queue of `population` subnets; each step a tournament of `sample_size` random members picks
the parent (feasible first, then best first objective), its mutation is evaluated and appended,
and the *oldest* member dies, whatever its score. Ageing keeps the population moving and is
what makes this evolution robust to noisy accuracy estimates. Only the first objective
(accuracy) guides the search; the Pareto front is still taken over every evaluated subnet.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from nas.search._registry import register_searcher
from nas.search.base import Candidate, Objective
from nas.search.evaluator import Evaluator
from nas.search.operators import (
    evaluate_start,
    feasible_novel,
    initial_population,
    mutate_until_changed,
)
from search_spaces.base import SearchSpace


@register_searcher("evolution")
class AgingEvolutionSearcher:
    """Aging evolution.

    Args:
        population: size of the queue.
        sample_size: tournament size (default: a quarter of the population, at least 2).
        mutation_prob: per-choice resampling probability passed to `space.mutate`.
        batch: children made per step; 1 is the original sequential algorithm, larger
            batches let an expensive evaluator score several subnets per call.
    """

    def __init__(
        self,
        *,
        population: int = 50,
        sample_size: int | None = None,
        mutation_prob: float = 0.2,
        batch: int = 1,
    ) -> None:
        self.population = population
        self.sample_size = sample_size or max(2, population // 4)
        self.mutation_prob = mutation_prob
        self.batch = batch

    def run(self, space: SearchSpace, evaluator: Evaluator, *, seed: int) -> None:
        rng = np.random.default_rng(seed)
        seen: set[str] = set()
        size = min(self.population, evaluator.remaining)
        start = initial_population(space, evaluator, rng, size=size, seen=seen)
        queue = deque(evaluate_start(evaluator, start, population=self.population))
        while len(queue) > self.population:
            queue.popleft()
        objective = evaluator.objectives[0]
        while not evaluator.done and queue:
            members = list(queue)

            def make(
                n: int, attempt: int, members: list[Candidate] = members
            ) -> list[dict[str, object]]:
                prob = min(0.5, self.mutation_prob * 2**attempt)  # harder when seen before
                return [
                    mutate_until_changed(
                        space, self._parent(members, objective, rng).arch, rng, prob=prob
                    )
                    for _ in range(n)
                ]

            count = min(self.batch, evaluator.remaining)
            children = feasible_novel(make, evaluator, count=count, seen=seen)
            if not children:
                break
            scored = [c for c in evaluator.evaluate(children) if c.arch_id in evaluator.used]
            # on a shared study, the other workers' children join the queue as they arrive
            for child in scored + evaluator.take_foreign():
                queue.append(child)
                if len(queue) > self.population:
                    queue.popleft()

    def _parent(
        self, members: list[Candidate], objective: Objective, rng: np.random.Generator
    ) -> Candidate:
        picks = rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
        chosen: Candidate = min(
            (members[int(i)] for i in picks),
            key=lambda c: (c.violation, objective.sign * c.values[objective.name]),
        )
        return chosen
