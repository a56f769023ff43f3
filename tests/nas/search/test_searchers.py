"""Every registered searcher: seeded determinism, budget, constraint handling (registry-driven)."""

from __future__ import annotations

import pytest

from nas.search import SEARCHERS
from nas.search.base import Constraint
from nas.search.optimize import run_search
from nas.search.oracle import Oracle
from search_spaces.nb201 import NB201Space

NAMES = SEARCHERS.names()


def objectives(oracle: Oracle) -> list:
    return [
        oracle.objective("top1", "maximize", cheap=False),
        oracle.objective("latency_ms", "minimize", cheap=True),
    ]


def test_registry_lists_the_built_in_searchers() -> None:
    assert {"evolution", "nsga2", "optuna-tpe", "optuna-nsga2", "random"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(name: str, oracle: Oracle, space: NB201Space) -> None:
    runs = [
        run_search(space, objectives(oracle), algorithm=name, budget=30, seed=seed, population=8)
        for seed in (3, 3, 4)
    ]
    ids = [[c.arch_id for c in r.history] for r in runs]
    assert len(ids[0]) == 30 and len(set(ids[0])) == 30  # the budget, no subnet twice
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


@pytest.mark.parametrize("name", NAMES)
def test_infeasible_never_scored_nor_on_front(
    name: str, oracle: Oracle, space: NB201Space
) -> None:
    bound = 2.5  # ms; roughly a third of the synthetic cells satisfy it
    result = run_search(
        space, objectives(oracle), algorithm=name, budget=25, seed=0, population=8,
        constraints=[Constraint("latency_ms", max=bound)],
    )
    assert result.front and all(c.values["latency_ms"] <= bound for c in result.front)
    assert all(c.feasible and c.values["latency_ms"] <= bound for c in result.history)
    # accuracy (the expensive metric) was looked up exactly once per scored subnet
    assert oracle.lookups["top1"] == result.new_evaluations == len(result.history)
    assert result.rejected > 0  # proposals were rejected, before any accuracy lookup


@pytest.mark.parametrize("name", ["nsga2", "evolution", "random"])
def test_impossible_constraint_is_a_clear_error(
    name: str, oracle: Oracle, space: NB201Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nas.errors import NasError
    from nas.search import optuna_search

    monkeypatch.setattr(optuna_search, "MAX_MISSES", 100)

    with pytest.raises(NasError, match="expected feasible subnets, got none"):
        run_search(
            space, objectives(oracle), algorithm=name, budget=10, seed=0, population=4,
            constraints=[Constraint("latency_ms", max=0.01)],
        )
