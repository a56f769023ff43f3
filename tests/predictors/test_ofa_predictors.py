"""Predictors on the real ofa-mbv3 space: OFA-format import, block-key features, a synthetic
latency that is additive over block keys (so the lookup table must be near exact)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.profile.fit import build_predictors, import_measurements, read_archs
from nas.profile.store import ProfileStore
from predictors import load_predictor
from predictors.features import Featurizer, key_universe
from search_spaces import create_space


@pytest.fixture(scope="module")
def space():  # type: ignore[no-untyped-def]
    return create_space("ofa-mbv3", num_classes=10, resolutions=[16, 32], image_size=32)


def _ofa_format(arch: dict) -> dict:  # type: ignore[type-arg]
    return {"ks": arch["kernel_size"], "e": arch["expand_ratio"], "d": arch["depth"],
            "r": [arch["resolution"]]}


@pytest.mark.slow
def test_ofa_format_import_fits_lookup_table(
    space, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    keys = key_universe(space, space.resolutions)
    cost = {key: 0.05 + 0.01 * (index % 7) for index, key in enumerate(keys)}
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    lines = [json.dumps({"arch": _ofa_format(a),
                         "latency_ms": 0.3 + 1.2 * sum(cost[k] for k in space.block_keys(a))})
             for a in archs]
    lines += [json.dumps({"block": key, "latency_ms": value}) for key, value in cost.items()]
    path = tmp_path / "measured.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = ProfileStore(tmp_path, "phone")
    assert import_measurements(space, store, path) == (60, len(keys))
    report = build_predictors(space, store, resolutions=space.resolutions)
    assert report["predictors"]["lut"]["holdout"]["within5"] == 1.0
    model, meta = load_predictor(tmp_path, "phone", kind="lut")
    assert meta["space_name"] == "ofa-mbv3"
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps(_ofa_format(archs[0])) + "\n")
    expected = 0.3 + 1.2 * sum(cost[k] for k in space.block_keys(archs[0]))
    assert model.predict(read_archs(space, queries))[0] == pytest.approx(expected, rel=1e-4)


def test_featurizer_counts_match_block_keys(space) -> None:  # type: ignore[no-untyped-def]
    featurizer = Featurizer(space, key_universe(space, space.resolutions))
    arch = space.largest()
    features = featurizer.transform([arch, space.smallest()])
    assert features.counts[0].sum() == len(space.block_keys(arch))
    assert features.encoded.shape == (2, space.dim)


def test_fast_featurizer_matches_generic_and_reports_bad_archs(
    space,  # type: ignore[no-untyped-def]
) -> None:
    from nas.errors import InvalidArchError
    from predictors.features import BatchFeaturizer, make_featurizer

    keys = key_universe(space, space.resolutions)
    fast, generic = make_featurizer(space, keys), Featurizer(space, keys)
    assert isinstance(fast, BatchFeaturizer)
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(200)]
    want, got = generic.transform(archs), fast.transform(archs)
    np.testing.assert_array_equal(got.encoded, want.encoded)
    np.testing.assert_array_equal(got.counts, want.counts)
    bad = dict(archs[0], resolution=224)  # not in the space: validation names the key
    with pytest.raises(InvalidArchError, match="resolution"):
        fast.transform([bad])
