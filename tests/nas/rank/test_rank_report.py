"""The report folder: JSON shape, CSV rows, the scatter PNG, and metrics recomputed from rows."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.rank.metrics import kendall_tau, ranking_metrics
from nas.rank.report import RankedSubnet, write_report
from nas.rank.sampling import sample_by_size
from search_spaces import create_space

SPACE = create_space("nb201")


def _ranked(n: int = 24) -> list[RankedSubnet]:
    rng = np.random.default_rng(0)
    sampled = sample_by_size(SPACE, n, rng, bins=3, pool_size=400)
    rows = []
    for index, s in enumerate(sampled):
        truth = 80.0 + s.params / 1e5 + float(rng.normal())
        scores = {"params": float(s.params), "naswot": float(rng.normal()) if index else -math.inf}
        rows.append(RankedSubnet(s, truth, scores, seconds={"naswot": 0.2, "params": 0.0}))
    return rows


def _report(folder: Path, subnets: list[RankedSubnet]) -> dict:
    truth = [s.truth for s in subnets]
    scores = {name: [s.scores[name] for s in subnets] for name in ("params", "naswot")}
    metrics = ranking_metrics(truth, scores, rng=np.random.default_rng(1), resamples=50)
    return write_report(folder, subnets, metrics, settings={"seed": 0, "space": "nb201"})


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RankedSubnet], dict]:
    """One report for the module (drawing the PNG is the slow part)."""
    folder = tmp_path_factory.mktemp("rank") / "t1"
    subnets = _ranked()
    return folder, subnets, _report(folder, subnets)


def test_report_json_has_the_documented_shape(written: tuple) -> None:
    folder, _, returned = written
    report = json.loads((folder / "report.json").read_text())
    assert report == json.loads(json.dumps(returned))
    assert report["n"] == 24 and report["seed"] == 0 and report["top_fraction"] == 0.1
    assert set(report["scores"]) == {"params", "naswot"}
    assert set(report["scores"]["params"]) == {
        "kendall_tau",
        "spearman",
        "precision_top10",
        "tau_top10",
    }
    assert report["seconds_per_subnet"] == pytest.approx({"naswot": 0.2, "params": 0.0})
    first = report["subnets"][1]
    assert set(first) == {"arch", "arch_id", "truth", "params", "naswot", "macs", "bin"}
    assert isinstance(first["params"], int) and SPACE.normalize(first["arch"]) == first["arch"]
    assert report["subnets"][0]["naswot"] is None  # -inf has no JSON spelling
    # the headline figure can be recomputed from the rows alone
    rows = report["subnets"]
    tau = kendall_tau([r["truth"] for r in rows], [r["params"] for r in rows])
    assert report["scores"]["params"]["kendall_tau"]["value"] == pytest.approx(tau)


def test_csv_and_png_are_written_atomically(written: tuple) -> None:
    folder, subnets, _ = written
    with open(folder / "subnets.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["arch_id", "bin", "params", "macs", "truth", "naswot", "arch"]
    assert [r["arch_id"] for r in rows] == [s.subnet.arch_id for s in subnets]
    assert float(rows[0]["naswot"]) == -math.inf
    assert json.loads(rows[3]["arch"]) == subnets[3].subnet.arch
    assert (folder / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in folder.iterdir()) == [
        "report.json",
        "scatter.png",
        "subnets.csv",
    ]  # no temporary file left behind


@pytest.mark.parametrize(
    ("scorer", "message"),
    [("truth", "taken by a subnet column"), ("snip", "no value for snip")],
)
def test_scorer_names_and_missing_values_are_checked(
    tmp_path: Path, scorer: str, message: str
) -> None:
    subnets = _ranked(6)
    truth = [s.truth for s in subnets]
    metrics = ranking_metrics(truth, {scorer: truth}, rng=np.random.default_rng(0), resamples=0)
    with pytest.raises(ConfigError, match=message):
        write_report(tmp_path, subnets, metrics)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([1.0, 2.0, 3.0], "linear"),
        ([0.0, 1.0, 1e40], "log"),  # synflow: zeros for cells without a path, then decades
        ([-9000.0, -20.0, -1.0], "symlog"),  # jacov's long negative tail
        ([0.0, 0.0], "linear"),
    ],
)
def test_wide_scorers_get_a_log_axis(values: list[float], scale: str) -> None:
    from nas.rank.plot import _scale

    assert _scale(values) == scale
