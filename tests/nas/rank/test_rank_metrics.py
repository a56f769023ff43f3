"""Ranking metrics against scipy (a test-only reference) and hand-made cases."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.rank import metrics

stats = pytest.importorskip("scipy.stats")


def _pairs(rng: np.random.Generator, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(2, 80))
    if ties:  # few distinct values, so most pairs are tied in one vector or both
        x = rng.integers(0, 4, n).astype(float)
        return x, x + rng.integers(0, 3, n)
    x = rng.normal(size=n)
    return x, x + rng.normal(size=n)


def _naive_precision(truth: np.ndarray, scores: np.ndarray, k: int) -> float:
    best_truth = set(np.argsort(-truth)[:k].tolist())
    best_scores = set(np.argsort(-scores)[:k].tolist())
    return len(best_truth & best_scores) / k


@pytest.mark.filterwarnings("ignore:An input array is constant")
@pytest.mark.parametrize("ties", [False, True])
def test_tau_and_rho_match_scipy(ties: bool) -> None:
    rng = np.random.default_rng(1 + ties)
    for _ in range(20):
        x, y = _pairs(rng, ties)
        tau, rho = stats.kendalltau(x, y).statistic, stats.spearmanr(x, y).statistic
        assert metrics.kendall_tau(x, y) == pytest.approx(tau, nan_ok=True)
        assert metrics.spearman(x, y) == pytest.approx(rho, nan_ok=True)


@pytest.mark.parametrize("ties", [False, True])
def test_tau_top_matches_scipy_on_the_top(ties: bool) -> None:
    rng = np.random.default_rng(3 + ties)
    for _ in range(20):
        truth, scores = _pairs(rng, ties)
        truth, scores = np.tile(truth, 3), np.tile(scores, 3) + rng.normal(size=3 * truth.size)
        k = max(1, math.floor(0.2 * truth.size + 0.5))
        top = truth >= np.sort(truth)[::-1][k - 1]  # ties with the k-th best are kept
        expected = stats.kendalltau(truth[top], scores[top]).statistic
        got = metrics.tau_at_top(truth, scores, 0.2)
        assert got == pytest.approx(expected, nan_ok=True)


def test_precision_without_ties_is_the_overlap_of_the_top_sets() -> None:
    rng = np.random.default_rng(5)
    for n in (2, 7, 10, 31, 300):
        truth, scores = rng.normal(size=n), rng.normal(size=n)
        k = max(1, math.floor(0.1 * n + 0.5))
        assert metrics.precision_at_top(truth, scores) == pytest.approx(
            _naive_precision(truth, scores, k)
        )


def test_precision_counts_ties_at_the_threshold_by_their_expected_share() -> None:
    # top 2 of 4 by truth: subnets 0, 1. The scorer puts 0 first, then 1, 2, 3 tied for
    # place 2: one of the three tied places is taken, so subnet 1 counts 1/3.
    truth = np.array([4.0, 3.0, 2.0, 1.0])
    scores = np.array([9.0, 5.0, 5.0, 5.0])
    assert metrics.precision_at_top(truth, scores, 0.5) == pytest.approx((1 + 1 / 3) / 2)
    # a constant scorer is at chance level, k / n
    assert metrics.precision_at_top(truth, np.ones(4), 0.5) == pytest.approx(0.5)


def test_resampled_values_equal_scipy_on_the_drawn_samples() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 30, 50).astype(float)
    scores = truth + rng.normal(scale=8, size=50)
    counts = metrics.resample_counts(np.random.default_rng(11), 50, 4)
    drawn = np.random.default_rng(11).integers(0, 50, size=(4, 50))
    taus = metrics._tau_b(counts, truth, scores)
    rhos = metrics._spearman(counts, truth, scores)
    precisions = metrics._precision(counts, truth, scores, 0.1)
    for row, idx in enumerate(drawn):
        assert taus[row] == pytest.approx(stats.kendalltau(truth[idx], scores[idx]).statistic)
        assert rhos[row] == pytest.approx(stats.spearmanr(truth[idx], scores[idx]).statistic)
        assert 0.0 <= precisions[row] <= 1.0


def test_ranking_metrics_intervals_are_seeded_and_cover_the_value() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=120)
    scores = {"good": truth + rng.normal(scale=0.5, size=120), "noise": rng.normal(size=120)}
    first = metrics.ranking_metrics(truth, scores, rng=np.random.default_rng(3), resamples=200)
    again = metrics.ranking_metrics(truth, scores, rng=np.random.default_rng(3), resamples=200)
    assert first == again
    good = first["good"]
    assert good.n == 120
    assert good.kendall_tau.value == pytest.approx(metrics.kendall_tau(truth, scores["good"]))
    for estimate in (good.kendall_tau, good.spearman, good.precision_top):
        assert estimate.low <= estimate.value <= estimate.high
    assert first["noise"].kendall_tau.low < 0.2 < good.kendall_tau.low
    assert set(good.as_dict()) == {"kendall_tau", "spearman", "precision_top10", "tau_top10"}
    assert set(good.as_dict()["spearman"]) == {"value", "low", "high"}


def test_constant_scores_give_nan_and_null_in_json() -> None:
    result = metrics.ranking_metrics(
        [1.0, 2.0, 3.0, 4.0], {"flat": [5.0] * 4}, rng=np.random.default_rng(0), resamples=50
    )["flat"]
    assert math.isnan(result.kendall_tau.value) and math.isnan(result.spearman.value)
    assert math.isnan(result.kendall_tau.low)  # every resample is constant too
    assert result.as_dict()["kendall_tau"] == {"value": None, "low": None, "high": None}
    assert result.precision_top.value == pytest.approx(0.25)  # chance level, k / n


def test_infinite_scores_rank_last_instead_of_breaking() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.kendall_tau(truth, [-np.inf, -np.inf, 0.0, 1.0]) == pytest.approx(
        stats.kendalltau(truth, [-9.0, -9.0, 0.0, 1.0]).statistic
    )


def test_no_resamples_gives_nan_intervals() -> None:
    result = metrics.ranking_metrics(
        [1, 2, 3], {"s": [1, 3, 2]}, rng=np.random.default_rng(0), resamples=0
    )["s"]
    assert result.kendall_tau.value == pytest.approx(1 / 3)
    assert math.isnan(result.kendall_tau.low) and math.isnan(result.kendall_tau.high)


@pytest.mark.parametrize(
    ("truth", "scores", "message"),
    [
        ([1.0], [1.0], "at least 2"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "one value per subnet"),
        ([1.0, 2.0], [1.0, math.nan], "NaN"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-d"),
    ],
)
def test_bad_inputs_raise_config_errors(truth: list, scores: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        metrics.ranking_metrics(truth, {"s": scores}, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "options", [{"top_fraction": 0.0}, {"resamples": -1}, {"confidence": 1.0}]
)
def test_bad_options_raise_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError):
        metrics.ranking_metrics([1, 2], {"s": [1, 2]}, rng=np.random.default_rng(0), **options)


def test_bootstrap_of_300_subnets_is_fast() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    counts = metrics.resample_counts(rng, 300, 1000)
    start = time.perf_counter()
    metrics._tau_b(counts, truth, truth + rng.normal(size=300))
    assert time.perf_counter() - start < 0.5


def test_column_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 9, 40).astype(float), rng.normal(size=40)
    whole = (metrics.kendall_tau(x, y), metrics.spearman(x, y))
    monkeypatch.setattr(metrics, "_BLOCK_ENTRIES", 40 * 3)  # blocks of 3 columns
    assert (metrics.kendall_tau(x, y), metrics.spearman(x, y)) == pytest.approx(whole)
