from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import toy_space  # type: ignore[import-not-found]

from nas.errors import IncompatibleArtifactError, InvalidArchError
from nas.profile.devices import create_device
from nas.profile.fit import build_predictors, import_measurements, read_archs
from nas.profile.measure import MeasureSettings
from nas.profile.sampling import stratified_sample
from nas.profile.session import ProfilePlan, Session
from nas.profile.store import ProfileStore
from predictors import load_predictor, predictor_warning
from search_spaces import create_space

FAST = MeasureSettings(warmup=1, warmup_ms=0, repeats=3, target_ms=2, max_repeats=5)


def test_stratified_sample_covers_sizes_and_resolutions() -> None:
    space = toy_space.ToyChainSpace(resolutions=(8, 12))
    archs = stratified_sample(space, 12, np.random.default_rng(0))
    assert len({json.dumps(a, sort_keys=True) for a in archs}) == 12
    assert archs[0] == space.largest() and archs[1] == space.smallest()
    assert {a["resolution"] for a in archs} == {8, 12}
    again = stratified_sample(space, 12, np.random.default_rng(0))
    assert again == archs


def test_session_measures_resumes_and_builds_predictors(tmp_path: Path) -> None:
    space = toy_space.ToyChainSpace(resolutions=(8,))
    store = ProfileStore(tmp_path, "cpu")
    plan = ProfilePlan(samples=24, settings=FAST, seed=1)
    events = []
    session = Session(space, space.build_supernet(), create_device("cpu", threads=1), store, plan,
                      on_progress=events.append)
    summary = session.run()
    assert summary["subnets_total"] == 24
    assert summary["blocks_measured"] == len(space.block_key_universe([8]))
    assert {e.phase for e in events} == {"blocks", "subnets", "repeats"}
    # a second session with the same settings measures nothing new
    again = Session(space, space.build_supernet(), create_device("cpu", threads=1), store, plan)
    assert again.run()["blocks_measured"] == 0
    assert len(store.records(store.latency_path)) == 24

    report = build_predictors(space, store, resolutions=[8], extra_meta={"fingerprint": None})
    assert report["n_subnets"] == 24 and report["n_holdout"] == 24
    assert report["noise_floor"]["n_pairs"] >= 2
    assert report["predictors"]["lut"]["holdout"] is not None
    model, meta = load_predictor(tmp_path, "cpu")
    assert meta["kind"] == report["chosen"]
    predicted = model.predict([space.largest(), space.smallest()])
    assert predicted[0] > predicted[1] > 0


def test_session_with_reference_records_it(tmp_path: Path) -> None:
    space = toy_space.ToyChainSpace(resolutions=(8,))
    store = ProfileStore(tmp_path, "cpu")
    plan = ProfilePlan(samples=4, settings=FAST, blocks=False, reference=True)
    summary = Session(space, space.build_supernet(), create_device("cpu", threads=1), store,
                      plan).run()
    assert summary["reference_ms"] > 0 and summary["setup"]["reference"] is True
    assert (store.profile_dir / "reference.json").is_file()
    assert all(r["setup"]["reference"] for r in store.records(store.latency_path))


def test_import_ofa_like_format_and_incompatible_load(tmp_path: Path) -> None:
    space = create_space("toy-chain", resolutions=[8])
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(30):
        arch = space.sample(rng)
        ms = 0.1 + sum(a * b for a, b in space.layers(arch)) / 100
        lines.append(json.dumps({"arch": {"w": arch["width"], "d": arch["depth"], "r": 8},
                                 "latency_ms": ms}))
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = ProfileStore(tmp_path / "standalone", "pixel7")
    assert import_measurements(space, store, path) == (30, 0)
    report = build_predictors(space, store, resolutions=[8])
    assert report["predictors"]["lut"]["skipped"]  # no block timings were imported
    assert report["predictors"]["ridge"]["holdout"]["within10"] > 0.8
    model, meta = load_predictor(store.root, "pixel7")
    assert predictor_warning(meta) is None or "poor" in predictor_warning(meta)

    other = create_space("toy-chain", resolutions=[8, 12])  # other encoding dim
    with pytest.raises(IncompatibleArtifactError, match="dim"):
        load_predictor(store.root, "pixel7", space=other)
    meta_path = store.predictor_dir / meta["kind"] / "meta.json"
    blob = json.loads(meta_path.read_text())
    blob["space"]["encoding_version"] = 99
    meta_path.write_text(json.dumps(blob))
    with pytest.raises(IncompatibleArtifactError, match="encoding version"):
        load_predictor(store.root, "pixel7")

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"arch": {"w": [5, 4, 4], "d": 1}, "latency_ms": 1.0}\n')
    with pytest.raises(InvalidArchError, match="record 1"):
        import_measurements(space, store, bad)
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"w": [4, 4, 4], "d": 1, "r": 8}) + "\n"
                       + json.dumps(space.largest()) + "\n")
    assert read_archs(space, queries)[1] == space.largest()
