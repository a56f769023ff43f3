"""A front member measured over the latency budget is marked; a poor predictor whose front is
not measured is refused unless accepted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.search.base import Candidate, Constraint, Objective
from nas.search.objectives import LatencySource
from nas.search.output import write_front
from nas.search.problems import SearchConfig, _check_trust

OBJECTIVES = [Objective("top1", "maximize", lambda a: np.zeros(len(a))),
              Objective("latency_ms", "minimize", lambda a: np.zeros(len(a)), cheap=True)]


def test_front_files_mark_members_measured_over_the_budget(tmp_path: Path) -> None:
    front = [Candidate({"w": 1}, "a", {"top1": 90.0, "latency_ms": 2.5, "macs": 5e6,
                                       "params": 1e5}),
             Candidate({"w": 2}, "b", {"top1": 80.0, "latency_ms": 1.0, "macs": 2e6,
                                       "params": 5e4})]
    write_front(tmp_path, front, objectives=OBJECTIVES,
                constraints=[Constraint("latency_ms", max=3.0)], header={},
                measured={"a": 3.6, "b": 1.1})
    members = json.loads((tmp_path / "pareto.json").read_text())["front"]
    assert [m["measured_over_budget"] for m in members] == [True, False]
    rows = list(csv.DictReader((tmp_path / "pareto.csv").open()))
    assert rows[0]["measured_over_budget"] == "True" and rows[0]["macs"] == "5000000.0"
    assert "params" in rows[0]


def _source(poor: bool, local: bool) -> LatencySource:
    fingerprint = None
    if local:
        from nas.fingerprint import fingerprint as machine

        fingerprint = machine("cpu", threads=1)
    meta = {"poor": poor, "fingerprint": fingerprint, "kind": "ridge"}
    return LatencySource(OBJECTIVES[1], meta, None)


def test_a_poor_predictor_needs_measuring_or_consent() -> None:
    _check_trust(SearchConfig(), _source(poor=False, local=False), "cpu")  # good: fine
    _check_trust(SearchConfig(), _source(poor=True, local=True), "cpu")  # front measured here
    with pytest.raises(ConfigError, match="--accept-poor-predictor"):
        _check_trust(SearchConfig(), _source(poor=True, local=False), "phone")
    with pytest.raises(ConfigError, match="--no-measure"):
        _check_trust(SearchConfig(measure=False), _source(poor=True, local=True), "cpu")
    _check_trust(SearchConfig(accept_poor_predictor=True), _source(poor=True, local=False), "x")
