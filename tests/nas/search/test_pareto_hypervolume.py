"""Pareto sorting, constraint domination, crowding and hypervolume on hand-made points."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.search.base import (
    Candidate,
    Constraint,
    Objective,
    constrained_fronts,
    crowding_distance,
    non_dominated_sort,
    pareto_front,
)
from nas.search.hypervolume import hypervolume, hypervolume_2d


def _zero(archs: object) -> np.ndarray:
    raise AssertionError("not evaluated in these tests")


ACC = Objective("top1", "maximize", _zero)
LAT = Objective("latency_ms", "minimize", _zero)


def cand(name: str, top1: float, lat: float, violation: float = 0.0) -> Candidate:
    return Candidate({"name": name}, name, {"top1": top1, "latency_ms": lat}, violation)


def test_non_dominated_sort_hand_made() -> None:
    points = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [2, 2]], dtype=float)
    fronts = [sorted(f.tolist()) for f in non_dominated_sort(points)]
    assert fronts == [[0, 1, 2, 5], [3], [4]]


def test_pareto_front_mixed_directions_and_ties() -> None:
    cands = [cand("a", 90, 5), cand("b", 80, 2), cand("c", 85, 6), cand("d", 80, 2),
             cand("e", 95, 9), cand("f", 99, 1, violation=0.5)]
    front = pareto_front(cands, [ACC, LAT])
    # c is dominated by a; f is infeasible; b and d tie and are both kept
    assert [c.arch_id for c in front] == ["e", "a", "b", "d"]


def test_constraint_domination_order() -> None:
    points = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0], [6.0, 6.0]])
    violations = np.array([0.3, 0.0, 0.1, 0.0])
    fronts = [f.tolist() for f in constrained_fronts(points, violations)]
    # feasible ones first whatever their objectives, then infeasible by violation
    assert fronts == [[1], [3], [2], [0]]


def test_crowding_distance_boundaries_infinite() -> None:
    points = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    distance = crowding_distance(points)
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)


def test_hypervolume_2d_staircase() -> None:
    assert hypervolume_2d(np.array([[1, 3], [2, 2], [3, 1]]), np.array([4, 4])) == 6.0
    # dominated and out-of-reference points add nothing
    pts = [[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]]
    assert hypervolume(pts, [4, 4]) == 6.0


def test_hypervolume_3d_against_brute_force_grid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        pts = rng.integers(0, 5, size=(7, 3))
        covered = sum(
            any((p <= np.array(cell)).all() for p in pts)
            for cell in itertools.product(range(5), repeat=3)
        )
        assert hypervolume(pts, [5, 5, 5]) == pytest.approx(covered)


def test_hypervolume_general_matches_2d_times_depth() -> None:
    pts2 = np.array([[0.5, 2.0], [1.0, 1.0], [2.5, 0.2]])
    pts3 = np.column_stack([pts2, np.full(3, 1.0)])
    assert hypervolume(pts3, [3, 3, 4]) == pytest.approx(hypervolume(pts2, [3, 3]) * 3)


def test_hypervolume_shape_mismatch() -> None:
    with pytest.raises(ConfigError, match="reference of length m"):
        hypervolume([[1, 2]], [3, 3, 3])


def test_constraint_violation_and_bounds() -> None:
    assert Constraint("latency_ms", max=10).violation(12) == pytest.approx(0.2)
    assert Constraint("top1", min=50).violation(60) == 0.0
    with pytest.raises(ConfigError, match="min <= max"):
        Constraint("x", max=1, min=2)
    with pytest.raises(ConfigError, match="max or a min"):
        Constraint("x")


@pytest.mark.parametrize("m", [2, 3])
def test_first_front_matches_full_sort_with_ties(m: int) -> None:
    from nas.search.base import first_front

    rng = np.random.default_rng(m)
    for _ in range(20):
        points = rng.integers(0, 6, size=(40, m)).astype(float)  # many ties and duplicates
        expected = np.sort(non_dominated_sort(points)[0])
        assert first_front(points).tolist() == expected.tolist()
