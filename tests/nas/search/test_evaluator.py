"""The evaluator: cache by arch_id, cheap constraints before expensive metrics, budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.search.base import Constraint, Objective
from nas.search.evaluator import Evaluator
from search_spaces.nb201 import NB201Space


class Counting:
    """An objective function that counts the archs it was asked for."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, []

    def __call__(self, archs: Sequence[Any]) -> np.ndarray:
        self.calls.extend(archs)
        return np.array([self.fn(a) for a in archs], dtype=float)


def convs(arch: Any) -> int:
    return sum(op.startswith("nor_conv") for op in arch.values())


def make(budget: int = 10, bound: float | None = None) -> tuple[Evaluator, Counting, Counting]:
    accuracy, cost = Counting(lambda a: 50 + 5 * convs(a)), Counting(lambda a: 1.0 + convs(a))
    objectives = [Objective("top1", "maximize", accuracy),
                  Objective("latency_ms", "minimize", cost, cheap=True)]
    constraints = [Constraint("latency_ms", max=bound)] if bound is not None else []
    return Evaluator(objectives, budget=budget, constraints=constraints), accuracy, cost


def test_each_subnet_scored_once(space: NB201Space) -> None:
    evaluator, accuracy, _ = make()
    a, b = space.largest(), space.smallest()
    first = evaluator.evaluate([a, b, a])
    second = evaluator.evaluate([b, a])
    assert len(accuracy.calls) == 2  # a and b once each, despite four more requests
    assert first[0] is first[2] is second[1]
    assert evaluator.remaining == 8 and evaluator.new_evaluations == 2


def test_infeasible_rejected_before_accuracy(space: NB201Space) -> None:
    evaluator, accuracy, cost = make(bound=3.0)  # at most two convolutions
    big, small = space.largest(), space.smallest()
    out = evaluator.evaluate([big, small])
    assert not out[0].feasible and "top1" not in out[0].values
    assert out[1].feasible and out[1].values["top1"] == 50
    assert accuracy.calls == [small]
    assert evaluator.screen([big, small]) == [False, True]
    assert len(accuracy.calls) == 1  # screening never evaluates accuracy
    assert list(evaluator.used) == [out[1].arch_id]  # rejected ones use no budget


def test_done_when_budget_used(space: NB201Space) -> None:
    evaluator, _, _ = make(budget=3)
    rng = np.random.default_rng(0)
    while not evaluator.done:
        evaluator.evaluate([space.sample(rng)])
    assert len(evaluator.history) == 3


def test_constraint_on_unknown_metric_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'macs'"):
        Evaluator([Objective("top1", "maximize", Counting(convs))], budget=3,
                  constraints=[Constraint("macs", max=1.0)])
