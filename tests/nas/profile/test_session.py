from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import toy_space  # type: ignore[import-not-found]

from nas.arch import arch_id
from nas.errors import IncompatibleArtifactError, InvalidArchError
from nas.profile.devices import Device, create_device
from nas.profile.fit import build_predictors, import_measurements, read_archs, training_data
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
    plan = ProfilePlan(samples=24, settings=FAST, seed=1, rounds=1)
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


class DriftingDevice(Device):
    """Fake timings: a model's latency is its parameter count (thousands), except that a third
    of the models are caught by a 'burst of load' (40 % slow) in their first or second
    measurement, never in both."""

    family = "drifting"

    def __init__(self) -> None:
        super().__init__(None, threads=1)
        self.seen: dict[int, int] = {}

    def prepare(self, model: Any, input_shape: tuple[int, ...]) -> Any:
        params = sum(p.numel() for p in model.parameters())
        self.seen[params] = self.seen.get(params, 0) + 1
        slow = params % 3 == 0 and self.seen[params] == 1 + params % 2
        size = 1e-3 * params * (1.4 if slow else 1.0)
        return lambda n: [size] * n


def test_rounds_take_the_median_and_break_ties(tmp_path: Path) -> None:
    space = toy_space.ToyChainSpace(resolutions=(8,))
    store = ProfileStore(tmp_path, "drifting")
    plan = ProfilePlan(samples=12, settings=FAST, seed=1, rounds=2)
    device = DriftingDevice()
    events: list[Any] = []
    summary = Session(space, space.build_supernet(), device, store, plan,
                      on_progress=events.append).run()
    phases = {e.phase for e in events}
    assert {"blocks 1/2", "blocks 2/2", "subnets 1/2", "subnets 2/2"} <= phases
    assert "repeats" not in phases
    assert summary["blocks_measured"] == 2 * len(space.block_key_universe([8]))
    by_id: dict[str, list[float]] = {}
    for record in store.records(store.latency_path):
        by_id.setdefault(record["arch_id"], []).append(record["latency_ms"])
    assert len(by_id) == 12 and all(len(v) >= 2 for v in by_id.values())
    # exactly the subnets whose two measurements disagree got a third one
    disagreeing = [v for v in by_id.values() if max(v[:2]) > 1.05 * min(v[:2])]
    assert disagreeing and summary["tie_breaks"] == len(disagreeing)
    assert all(len(v) == 3 for v in disagreeing)
    # the lowest of the rounds drops the disturbed measurement
    archs, latency, _, _ = training_data(space, store, [8])
    truth = {arch_id(a): 1e-3 * sum(p.numel() for p in space.build_supernet()
                                    .extract_subnet(a).parameters()) for a in archs}
    slow_once = [arch_id(a) for a in archs if len(by_id[arch_id(a)]) == 3]
    for arch, measured in zip(archs, latency, strict=True):
        if arch_id(arch) in slow_once:
            assert measured == pytest.approx(truth[arch_id(arch)])
    report = build_predictors(space, store, resolutions=[8])
    assert report["noise_floor"]["n_pairs"] == 12  # round 1 against round 2 of every subnet
    # resuming measures nothing more
    again = Session(space, space.build_supernet(), DriftingDevice(), store, plan).run()
    assert again["blocks_measured"] == 0 and again["tie_breaks"] == 0
    assert len(store.records(store.latency_path)) == 24 + len(disagreeing)


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


def test_space_options_build_the_space_and_name_the_profile(tmp_path: Path) -> None:
    from nas.errors import ConfigError
    from nas.profile.store import open_target

    space, store = open_target(tmp_path, run=None, space="darts", num_classes=10, image_size=16,
                               device="cpu", options=["init_channels=8", "layers=5"])
    assert (space.init_channels, space.layers) == (8, 5)
    assert store.root.name == "darts-init_channels=8-layers=5-16px-cpu"
    plain, plain_store = open_target(tmp_path, run=None, space="darts", num_classes=10,
                                     image_size=16, device="cpu")
    assert plain.init_channels == 16 and plain_store.root.name == "darts-16px-cpu"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        open_target(tmp_path, run=None, space="darts", num_classes=10, image_size=16,
                    device="cpu", options=["init_channels"])
    with pytest.raises(ConfigError, match="does not take"):
        open_target(tmp_path, run=None, space="darts", num_classes=10, image_size=16,
                    device="cpu", options=["colour=red"])
