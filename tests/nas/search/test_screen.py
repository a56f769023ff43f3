"""Online accuracy-predictor screening: fewer data evaluations wasted, never a skipped score."""

from __future__ import annotations

import numpy as np

from nas.search.optimize import run_search
from nas.search.oracle import Oracle
from nas.search.screen import AccuracyScreen
from search_spaces.nb201 import NB201Space


def test_ridge_learns_a_linear_accuracy(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(space.dim)
    archs = [space.sample(rng) for _ in range(120)]
    truth = np.array([space.encode(a) @ weights for a in archs])
    screen = AccuracyScreen(space, ridge=1e-3)
    screen.observe(archs[:100], truth[:100])
    np.testing.assert_allclose(screen.predict(archs[100:]), truth[100:], atol=0.05)


def test_screening_skips_hopeless_candidates(oracle: Oracle, space: NB201Space) -> None:
    objectives = [oracle.objective("top1", "maximize", cheap=False),
                  oracle.objective("latency_ms", "minimize", cheap=True)]
    screen = AccuracyScreen(space, warmup=20)
    result = run_search(space, objectives, algorithm="nsga2", budget=60, seed=0,
                        population=10, screen=screen)
    assert result.screened > 0 and screen.skipped >= result.screened
    assert len(result.history) == 60
    assert oracle.lookups["top1"] == 60  # skipped candidates were never evaluated
    assert all("top1" in c.values for c in result.history)
