from __future__ import annotations

import itertools

import numpy as np
import pytest

from predictors.report import POOR_WITHIN10, kendall_tau, noise_floor, quality


def _tau_b_reference(x: list[float], y: list[float]) -> float:
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if a == 0 and b == 0:
            continue
        if a == 0:
            tx += 1
        elif b == 0:
            ty += 1
        elif a == b:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / np.sqrt((conc + disc + tx) * (conc + disc + ty))


def test_kendall_tau_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.integers(0, 3, 40)
    assert kendall_tau(x, y, chunk=7) == pytest.approx(_tau_b_reference(list(x), list(y)))
    assert kendall_tau(x, x) == pytest.approx(1.0)
    assert kendall_tau(x, -x) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau(np.ones(5), x[:5]))


def test_quality_shares_and_flag() -> None:
    measured = np.full(10, 100.0)
    predicted = measured.copy()
    predicted[:3] *= 1.07  # within 10 %, not within 5 %
    predicted[3:5] *= 1.5
    metrics = quality(predicted, measured)
    assert metrics.within5 == pytest.approx(0.5)
    assert metrics.within10 == pytest.approx(0.8)
    assert metrics.mape == pytest.approx(100 * (3 * 0.07 + 2 * 0.5) / 10)
    assert metrics.poor is (0.8 < POOR_WITHIN10)
    assert quality(predicted * 0 + 150, measured).poor


def test_noise_floor() -> None:
    floor = noise_floor([10.0, 10.0, 10.0, 10.0], [10.2, 10.8, 12.0, 10.0], [0.01, 0.03, 0.02])
    assert floor.n_pairs == 4
    assert floor.within5 == pytest.approx(0.5)
    assert floor.within10 == pytest.approx(0.75)
    assert floor.median_rel_iqr == pytest.approx(0.02)
