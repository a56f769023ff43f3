"""Variation helpers shared by the evolutionary searchers.

Children come from `space.mutate` / `space.crossover`, so they are valid by construction; they
are screened on cheap constraints in batches (one call per metric per batch, which keeps the
machinery cheap) and only novel, feasible children are returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.search.base import Candidate
from nas.search.evaluator import Evaluator
from search_spaces.base import SearchSpace

Arch = Mapping[str, Any]


def feasible_novel(
    make: Callable[[int, int], list[dict[str, Any]]],
    evaluator: Evaluator,
    *,
    count: int,
    seen: set[str],
    rounds: int = 50,
) -> list[dict[str, Any]]:
    """Up to `count` archs from `make(n, round)` batches that are new (not in `seen`) and
    feasible. `round` counts the batches asked so far, so a maker can vary more when its
    children keep coming back already seen (late in a search, around a converged front).

    `seen` is updated with the returned archs. Stops early after `rounds` batches, so a
    tiny or over-constrained space returns fewer archs instead of looping forever.
    """
    chosen: list[dict[str, Any]] = []
    for attempt in range(rounds):
        if len(chosen) >= count:
            break
        batch = make(2 * (count - len(chosen)) + 2, attempt)
        ids = evaluator.ids(batch)
        fresh = [(a, i) for a, i in zip(batch, ids, strict=True) if i not in seen]
        ok = evaluator.screen([a for a, _ in fresh]) if fresh else []
        for (arch, aid), feasible in zip(fresh, ok, strict=True):
            if feasible and aid not in seen and len(chosen) < count:
                seen.add(aid)
                chosen.append(arch)
    return chosen


def initial_population(
    space: SearchSpace,
    evaluator: Evaluator,
    rng: np.random.Generator,
    *,
    size: int,
    seen: set[str],
) -> list[dict[str, Any]]:
    """`size` distinct random subnets that satisfy the cheap constraints.

    Raises:
        NasError: when no sampled subnet is feasible (the constraints are too tight).
    """
    if size <= 0:
        return []  # a shared study whose budget other workers used up already
    drawn = [0]

    def draw(n: int, attempt: int) -> list[dict[str, Any]]:
        drawn[0] += n
        return [space.sample(rng) for _ in range(n)]

    archs = feasible_novel(draw, evaluator, count=size, seen=seen, rounds=200)
    if not archs:
        described = "; ".join(c.describe() for c in evaluator.constraints)
        smallest = evaluator.screen([space.smallest()])[0]
        raise NasError(
            f"expected feasible subnets, got none among {drawn[0]} random samples under "
            f"constraints ({described}); the smallest subnet is "
            f"{'feasible' if smallest else 'infeasible too'}; relax the constraints"
        )
    return archs


def evaluate_start(
    evaluator: Evaluator, archs: list[dict[str, Any]], *, population: int
) -> list[Candidate]:
    """The scored candidates of an initial population.

    Alone, `archs` are scored together. On a study shared by several workers they are scored
    one at a time until the study holds `population` claims (from any worker), and the other
    workers' results join: together the workers score one initial population, not one each.
    """
    if not evaluator.shared:
        return [c for c in evaluator.evaluate(archs) if c.arch_id in evaluator.used]
    own: list[Candidate] = []
    for arch in archs:
        if evaluator.done or evaluator.budget - evaluator.remaining >= population:
            break
        own += [c for c in evaluator.evaluate([arch]) if c.arch_id in evaluator.used]
    return own + (evaluator.take_foreign() if own else evaluator.await_foreign())


def mutate_until_changed(
    space: SearchSpace, arch: Arch, rng: np.random.Generator, *, prob: float, tries: int = 20
) -> dict[str, Any]:
    """`space.mutate`, retried until the child differs from `arch` (at a low `prob` it often
    does not, and evaluating a copy of the parent wastes a proposal)."""
    child = space.mutate(arch, rng, prob=prob)
    for _ in range(tries):
        if child != arch:  # canonical archs: equal dicts are equal subnets
            break
        child = space.mutate(arch, rng, prob=prob)
    return child
