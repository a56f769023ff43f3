"""The structural predictor and its nested cross-validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predictors
from nas.errors import IncompatibleArtifactError
from predictors.base import Features, create_predictor
from predictors.features import make_featurizer
from predictors.io import LatencyModel, load_model, save_model
from predictors.penalised import ALPHAS, choose, ridge_path
from predictors.structural import StructuralPredictor
from search_spaces import create_space


def _weights(columns: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 1.0, size=columns)


def test_nested_cv_choice_is_a_pure_function_of_data_and_seed(devices: Any) -> None:
    data = devices(60, [_weights()], noise=0.03)
    x = np.asarray(data.features.structure)
    candidates = [(np.ones((60, 1)), x), (np.ones((60, 1)), x[:, :4])]
    y = data.latency_ms[0]
    first = choose(candidates, y, seed=3)
    assert choose(candidates, y, seed=3) == first
    a, b = StructuralPredictor(seed=5), StructuralPredictor(seed=5)
    a.fit(data.features, y)
    b.fit(data.features, y)
    assert a.alpha == b.alpha and a.column_names == b.column_names
    np.testing.assert_array_equal(a.coef, b.coef)


def test_nested_cv_shrinks_noise_and_trusts_signal(devices: Any) -> None:
    data = devices(80, [_weights()], noise=0.0)
    x = np.asarray(data.features.structure)
    ones = np.ones((80, 1))
    exact = choose([(ones, x)], data.latency_ms[0], seed=0)
    noise = 1.0 + np.random.default_rng(1).random(80)  # unrelated to the features
    pure_noise = choose([(ones, x)], noise, seed=0)
    assert exact.alpha < pure_noise.alpha
    assert pure_noise.alpha == ALPHAS[-1]


def test_ridge_path_leaves_free_columns_unpenalised() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((50, 3))
    prior = rng.uniform(1, 5, 50)
    y = 3.0 * prior + 2.0
    free = np.stack([np.ones(50), prior], axis=1)
    fit = ridge_path(free, x, y, np.ones(50), [1e6])[0]
    np.testing.assert_allclose(fit.coef_free, [2.0, 3.0], atol=1e-6)
    assert np.abs(fit.coef_pen).max() < 1e-6


def test_structural_beats_one_hot_with_few_subnets(devices: Any) -> None:
    weights = [_weights()]
    train, test = devices(100, weights, seed=1), devices(300, weights, seed=2)
    structural = create_predictor("structural")
    structural.fit(train.features, train.latency_ms[0])
    plain = create_predictor("ridge")
    plain.fit(Features(train.features.encoded, train.features.counts[:, :0]),
              train.latency_ms[0])
    ours = predictors.quality(structural.predict(test.features), test.latency_ms[0])
    one_hot = predictors.quality(
        plain.predict(Features(test.features.encoded, test.features.counts[:, :0])),
        test.latency_ms[0])
    assert ours.within10 >= 0.95 and ours.within10 > one_hot.within10


def test_without_structure_it_uses_the_encoding(synthetic: Any) -> None:
    predictor = StructuralPredictor()
    predictor.fit(synthetic.features, synthetic.latency_ms)
    assert predictor.column_names[0] == "encoded" and predictor.signature is None


@pytest.fixture(scope="module")
def mbv3() -> Any:
    space = create_space("ofa-mbv3", num_classes=10, resolutions=[16, 32], image_size=32)
    from predictors.features import key_universe

    return space, make_featurizer(space, key_universe(space, space.resolutions))


def test_saved_model_rebuilds_structure_and_predicts_identically(
    mbv3: Any, tmp_path: Path
) -> None:
    space, featurizer = mbv3
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    features = featurizer.transform(archs)
    macs = features.structure[:, featurizer.describer.names.index("total.macs")]
    latency = 0.2 + macs / macs.max() + 0.05 * features.structure[:, -1]
    predictor = create_predictor("structural")
    predictor.fit(features, latency)
    model = LatencyModel(predictor, featurizer, {"device": "phone"})
    save_model(model, tmp_path / "structural")
    loaded = load_model(tmp_path / "structural")
    np.testing.assert_array_equal(loaded.predict(archs), model.predict(archs))


def test_other_structural_features_are_refused(devices: Any, mbv3: Any) -> None:
    data = devices(40, [_weights()])
    predictor = create_predictor("structural")
    predictor.fit(data.features, data.latency_ms[0])
    _, featurizer = mbv3
    other = Features(data.features.encoded, data.features.counts, featurizer.describer)
    with pytest.raises(IncompatibleArtifactError, match="refit"):
        predictor.predict(other)
