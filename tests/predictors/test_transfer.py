"""Transfer from a profiled device, informative subnets, and the learning curve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predictors
from nas.errors import IncompatibleArtifactError
from predictors.base import Features, create_predictor
from predictors.features import make_featurizer
from predictors.informative import informative_subnets, select_informative
from predictors.io import LatencyModel, load_model, save_model
from predictors.learning_curve import learning_curve, measurements_needed
from predictors.select import fit_and_select
from predictors.structure.base import KeyTableDescriber
from predictors.transfer import SourcePrior, fit_transfer, prior_from_model
from search_spaces import create_space


def _pair(columns: int = 24) -> list[np.ndarray]:
    """Two correlated devices: the target is 1.5x the source, each operation +-15 %."""
    rng = np.random.default_rng(7)
    source = rng.uniform(0.2, 1.0, size=columns)
    return [source, 1.5 * source * (1.0 + 0.15 * rng.standard_normal(columns))]


def _prior(devices: Any) -> SourcePrior:
    profiled = devices(400, _pair(), seed=11)
    source = create_predictor("structural")
    source.fit(profiled.features, profiled.latency_ms[0])
    return SourcePrior("source", source, np.arange(profiled.features.counts.shape[1]))


def test_transfer_beats_no_transfer_from_20_samples(devices: Any) -> None:
    prior = _prior(devices)
    few, test = devices(20, _pair(), seed=1), devices(500, _pair(), seed=2)
    transfer = fit_transfer(few.features, few.latency_ms[1], prior)
    alone = create_predictor("structural")
    alone.fit(few.features, few.latency_ms[1])
    with_prior = predictors.quality(transfer.predict(test.features), test.latency_ms[1])
    without = predictors.quality(alone.predict(test.features), test.latency_ms[1])
    assert with_prior.within10 >= 0.95 and with_prior.kendall_tau >= 0.9
    assert with_prior.mape < 0.7 * without.mape
    assert with_prior.kendall_tau > without.kendall_tau


def test_transfer_round_trip_and_selection_options(devices: Any, tmp_path: Path) -> None:
    prior = _prior(devices)
    data = devices(40, _pair(), seed=3)
    selection = fit_and_select(data.features, data.latency_ms[1],
                               options={"transfer": {"prior": prior}})
    fitted = selection.get("transfer").predictor
    assert fitted is not None and selection.get("transfer").holdout is not None
    fitted.save(tmp_path / "t")
    loaded = predictors.PREDICTORS.get("transfer").load(tmp_path / "t")
    np.testing.assert_array_equal(loaded.predict(data.features), fitted.predict(data.features))
    plain = fit_and_select(data.features, data.latency_ms[1])
    assert "transfer" not in [item.kind for item in plain.fitted]


@dataclass
class NB201Source:
    """A source device on nb201 whose latency follows MACs, and the subnets it measured."""

    space: Any
    archs: list[dict[str, Any]]
    macs: np.ndarray
    model: LatencyModel


@pytest.fixture(scope="module")
def nb201_source() -> NB201Source:
    space = create_space("nb201")
    featurizer = make_featurizer(space, [])
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    macs = np.array([space.complexity(a)["macs"] for a in archs], dtype=float)
    source = create_predictor("structural")
    source.fit(featurizer.transform(archs), 1.0 + macs / macs.max())
    return NB201Source(space, archs, macs, LatencyModel(source, featurizer, {}))


def test_prior_from_a_saved_model_of_a_real_space(
    nb201_source: NB201Source, tmp_path: Path
) -> None:
    space, archs, macs = nb201_source.space, nb201_source.archs, nb201_source.macs
    featurizer = nb201_source.model.featurizer
    save_model(nb201_source.model, tmp_path / "source")
    prior = prior_from_model(load_model(tmp_path / "source"), space, [], device="gpu")
    target = 0.5 + 3.0 * macs / macs.max()
    transfer = fit_transfer(featurizer.transform(archs[:20]), target[:20], prior)
    model = LatencyModel(transfer, featurizer, {})
    save_model(model, tmp_path / "transfer")
    again = load_model(tmp_path / "transfer")
    np.testing.assert_array_equal(again.predict(archs), model.predict(archs))
    np.testing.assert_allclose(again.predict(archs[20:]), target[20:], rtol=0.02)
    with pytest.raises(IncompatibleArtifactError, match="same space options"):
        prior_from_model(load_model(tmp_path / "source"), create_space("nb201", channels=8),
                         [], device="gpu")


def test_informative_selection_spreads_over_the_range() -> None:
    rng = np.random.default_rng(0)
    source_ms = np.exp(rng.normal(1.0, 0.3, size=2000))  # bunched in the middle
    structure = rng.random((2000, 5))
    for extra in (None, structure):
        chosen = select_informative(source_ms, 20, structure=extra)
        assert len(set(chosen.tolist())) == 20
        values = np.log(source_ms[chosen])
        low, high = np.log(source_ms.min()), np.log(source_ms.max())
        # one subnet in every twentieth of the log range that holds candidates
        stretch = np.minimum(((values - low) / (high - low) * 20).astype(int), 19)
        occupied = np.unique(np.minimum(
            ((np.log(source_ms) - low) / (high - low) * 20).astype(int), 19))
        assert set(stretch.tolist()) == set(occupied.tolist())
        assert values.std() > 1.5 * np.log(source_ms).std()


def test_informative_subnets_from_a_source_model(nb201_source: NB201Source) -> None:
    space, model = nb201_source.space, nb201_source.model
    chosen = informative_subnets(space, model, 8, seed=0)
    assert len(chosen) == 8 and chosen == informative_subnets(space, model, 8, seed=0)
    # 8 stretches, each subnet near its stretch's centre: 7/8 of the predicted range covered
    predicted = np.log(model.predict(chosen))
    extremes = np.log(model.predict([space.smallest(), space.largest()]))
    assert np.ptp(predicted) >= 0.8 * np.ptp(extremes)


def _sparse(n: int, *, seed: int, columns: int = 30) -> tuple[Features, np.ndarray]:
    """A linear device with as many parameters as a small data set has subnets: its
    learning curve is flat below ~30 subnets and then drops steeply."""
    rng = np.random.default_rng(seed)
    x = (rng.exponential(1.0, (n, columns)) * (rng.random((n, columns)) < 0.3))
    weights = np.random.default_rng(99).uniform(0.5, 1.5, columns)
    latency = (0.1 + x @ weights) * (1.0 + 0.03 * rng.standard_normal(n))
    describer = KeyTableDescriber([f"c{i}" for i in range(columns)], np.eye(columns), "test/1")
    return Features(np.zeros((n, 0), np.float32), x.astype(np.float32), describer), latency


def test_learning_curve_is_monotone_ish_and_needed_is_sane() -> None:
    features, latency = _sparse(48, seed=1)
    curve = learning_curve(features, latency, points=5, repeats=2, seed=0)
    assert curve.sizes[-1] == 36 and len(curve.sizes) == 5
    assert curve.within10[-1] >= curve.within10[0]
    assert all(b >= a - 0.1 for a, b in zip(curve.within10, curve.within10[1:], strict=False))
    needed = measurements_needed(curve, target=0.9)
    assert needed.total is not None and needed.more is not None
    assert 48 < needed.total < 200 and needed.more == needed.total - 48
    assert "more measured subnets" in needed.message()
    # fitted on the number it asked for, the predictor reaches the goal
    more, more_latency = _sparse(needed.total, seed=5)
    test_features, test_latency = _sparse(500, seed=6)
    predictor = create_predictor("structural")
    predictor.fit(more, more_latency)
    assert predictors.quality(predictor.predict(test_features), test_latency).within10 >= 0.9
    assert measurements_needed(curve, target=0.5).more == 0


def test_learning_curve_says_when_noise_puts_the_goal_out_of_reach(devices: Any) -> None:
    data = devices(60, [np.full(24, 0.5)], noise=0.3, seed=4)
    needed = measurements_needed(learning_curve(data.features, data.latency_ms[0], points=4))
    assert needed.total is None and needed.limit < 0.8
    assert "out of reach" in needed.message()


def test_needed_report_for_the_quality_report(devices: Any) -> None:
    from predictors.learning_curve import needed_report

    data = devices(40, [np.full(24, 0.5)], noise=0.02, seed=4)
    report = needed_report(data.features, data.latency_ms[0], kind="ridge")
    assert report is not None and set(report) == {"learning_curve", "needed", "message"}
    assert report["needed"]["target"] == predictors.POOR_WITHIN10
    assert needed_report(data.features.take(np.arange(12)), data.latency_ms[0][:12],
                         kind="ridge") is None
