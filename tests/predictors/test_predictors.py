from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predictors
from predictors.base import LatencyPredictor, NotApplicableError, create_predictor, load_kind
from predictors.select import fit_and_select
from predictors.transfer import SourcePrior

KINDS = predictors.PREDICTORS.names()


def make(kind: str, data: Any) -> LatencyPredictor:
    """A fresh predictor of `kind`; kinds that transfer from a source device get a ridge
    fitted on slightly different latencies of the same subnets as their prior."""
    if not predictors.PREDICTORS.get(kind).needs_prior:
        return create_predictor(kind)
    source = create_predictor("ridge")
    source.fit(data.features, 0.7 * data.latency_ms + 0.3)
    columns = np.arange(data.features.counts.shape[1])
    return create_predictor(kind, prior=SourcePrior("source", source, columns))


@pytest.mark.parametrize("kind", KINDS)
def test_fit_predict_save_load_roundtrip(kind: str, synthetic: Any, tmp_path: Path) -> None:
    predictor = make(kind, synthetic)
    predictor.fit(synthetic.features, synthetic.latency_ms, block_ms=synthetic.block_ms)
    before = predictor.predict(synthetic.features)
    assert before.shape == (len(synthetic.latency_ms),)
    predictor.save(tmp_path / kind)
    loaded = load_kind(tmp_path / kind)
    assert type(loaded) is type(predictor)
    np.testing.assert_array_equal(loaded.predict(synthetic.features), before)


def test_a_predictor_saved_with_other_fields_fails_clearly(synthetic: Any, tmp_path: Path) -> None:
    import json

    from nas.errors import ArtifactError
    from predictors.base import MODEL_PARAMS

    predictor = create_predictor("structural")
    predictor.fit(synthetic.features, synthetic.latency_ms)
    predictor.save(tmp_path)
    blob = json.loads((tmp_path / MODEL_PARAMS).read_text())
    blob["params"] = {"seed": 0}  # an older layout: no record of the fit's choices
    (tmp_path / MODEL_PARAMS).write_text(json.dumps(blob))
    with pytest.raises(ArtifactError, match="refit it"):
        load_kind(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_predictor_generalises_on_additive_latency(kind: str, make_data: Any) -> None:
    train, test = make_data(300, seed=1), make_data(100, seed=2)
    # the same block costs in both sets: seed only changes which blocks are drawn
    test_features = test.features
    predictor = make(kind, train)
    predictor.fit(train.features, train.latency_ms, block_ms=train.block_ms)
    truth = 1.1 * test_features.counts @ train.block_ms + 0.8
    metrics = predictors.quality(predictor.predict(test_features), truth)
    assert metrics.within10 >= 0.9, (kind, metrics)
    assert metrics.kendall_tau > 0.8


def test_lookup_table_fits_scale_and_overhead(synthetic: Any) -> None:
    lut = create_predictor("lut")
    lut.fit(synthetic.features, synthetic.latency_ms, block_ms=synthetic.block_ms)
    assert lut.scale == pytest.approx(1.1, rel=0.02)  # type: ignore[attr-defined]
    assert lut.overhead_ms == pytest.approx(0.8, abs=0.3)  # type: ignore[attr-defined]


def test_lookup_table_needs_block_timings(synthetic: Any) -> None:
    with pytest.raises(NotApplicableError):
        create_predictor("lut").fit(synthetic.features, synthetic.latency_ms)
    missing = synthetic.block_ms.copy()
    missing[0] = np.nan
    with pytest.raises(NotApplicableError, match="no timing"):
        create_predictor("residual").fit(
            synthetic.features, synthetic.latency_ms, block_ms=missing
        )


def test_selection_picks_best_and_skips_inapplicable(synthetic: Any) -> None:
    selection = fit_and_select(synthetic.features, synthetic.latency_ms, seed=0)
    by_kind = {item.kind: item for item in selection.fitted}
    assert by_kind["lut"].predictor is None and "block" in str(by_kind["lut"].reason)
    chosen = by_kind[selection.chosen]
    assert chosen.holdout is not None
    best = max(i.holdout.within10 for i in selection.fitted if i.holdout is not None)
    assert chosen.holdout.within10 == best
    assert selection.n_holdout == 200 and selection.n_train == 150


def test_selection_can_be_forced(synthetic: Any) -> None:
    selection = fit_and_select(
        synthetic.features, synthetic.latency_ms, block_ms=synthetic.block_ms, force="mlp"
    )
    assert selection.chosen == "mlp"


def test_prediction_is_vectorised_fast(make_data: Any) -> None:
    # the target is 100,000 subnets/s on one core; CPU time (not wall time) so that other
    # processes on shared cores do not count; bench/bench_predictors.py measures the real rate
    data = make_data(200, keys=60, slots=10)
    big = data.features.take(np.resize(np.arange(200), 20_000))
    for kind in KINDS:
        predictor = make(kind, data)
        predictor.fit(data.features, data.latency_ms, block_ms=data.block_ms)
        start = time.process_time()
        predictor.predict(big)
        assert time.process_time() - start < 0.4, kind
