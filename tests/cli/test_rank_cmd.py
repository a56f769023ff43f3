"""`nas rank` on a tiny NB201 supernet and a tiny truth file, and `nas search` reading its report.

One supernet is trained (3 steps) for the module; the truth file is written by the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from cli import app
from tests.fixtures.cli_errors import one_error_line
from tests.fixtures.tiny_nb201 import register, train_tiny_run, write_truth

runner = CliRunner()
NAME = register()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(runs folder with run 'nb', a truth file of 24 subnets)."""
    root = tmp_path_factory.mktemp("rank")
    runs = root / "runs"
    runs.mkdir()
    train_tiny_run(runs, "nb")
    return runs, write_truth(root / "tiny_truth.jsonl", 24)


def _rank(runs: Path, *args: str) -> list[str]:
    return ["rank", *args, "--runs-dir", str(runs), "--bootstrap", "30"]


def test_rank_a_run_against_a_truth_file(trained: tuple[Path, Path]) -> None:
    runs, truth = trained
    args = _rank(runs, "--run", "nb", "--truth", str(truth), "--samples", "12")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 12 and list(report["scores"]) == ["supernet", "params", "macs"]
    rows = report["subnets"]
    assert len({row["arch_id"] for row in rows}) == 12
    assert {"arch", "truth", "supernet", "params", "macs", "bin"} <= set(rows[0])
    for scorer, metrics in report["scores"].items():  # tau recomputed from the rows
        expected = stats.kendalltau([r["truth"] for r in rows], [r[scorer] for r in rows])
        assert metrics["kendall_tau"]["value"] == pytest.approx(expected.statistic)
        low, high = metrics["kendall_tau"]["low"], metrics["kendall_tau"]["high"]
        assert low <= metrics["kendall_tau"]["value"] <= high
    folder = runs / "nb" / "rank" / "tiny_truth"
    for name in ("report.json", "subnets.csv", "scatter.png", "scores.jsonl", "settings.json"):
        assert (folder / name).is_file(), name
    lines = (folder / "scores.jsonl").read_text().splitlines()
    assert len(lines) == 12
    table = runner.invoke(app, args)  # a rerun scores nothing again and draws the table
    assert table.exit_code == 0, table.output
    assert "supernet" in table.stdout and "Kendall tau" in table.stdout
    assert "none scored now" in table.stdout and "scatter.png" in table.stdout
    assert (folder / "scores.jsonl").read_text().splitlines() == lines
    other = runner.invoke(app, [*args, "--seed", "1"])  # other settings, same folder: refused
    assert "other settings ('seed' was 0, got 1)" in one_error_line(other)


def test_rank_without_a_run_scores_proxies(trained: tuple[Path, Path]) -> None:
    runs, truth = trained
    result = runner.invoke(app, _rank(
        runs, "--space", NAME, "--dataset", "synthetic", "--image-size", "16", "--truth",
        str(truth), "--samples", "10", "--proxies", "synflow,naswot,combined", "--tag", "zc",
        "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["scores"]) == ["params", "macs", "synflow", "naswot", "jacov", "combined"]
    assert report["run"] is None and report["seconds_per_subnet"]["synflow"] > 0
    folder = runs / "_rank" / f"{NAME}-synthetic-16px" / "rank" / "zc"
    assert (folder / "report.json").is_file()


def test_bad_input_is_one_line(trained: tuple[Path, Path], tmp_path: Path) -> None:
    runs, truth = trained
    base = ["--run", "nb", "--truth", str(truth), "--samples", "4", "--tag", "bad"]
    unknown = runner.invoke(app, _rank(runs, *base, "--proxies", "nope"))
    assert "nope" in one_error_line(unknown) and "synflow" in unknown.output
    foreign = tmp_path / "ofa.jsonl"
    foreign.write_text('{"arch": {"kernel_size": [3, 3], "depth": [2]}, "top1": 70.0}\n')
    outside = runner.invoke(app, _rank(runs, "--run", "nb", "--truth", str(foreign)))
    assert "ofa.jsonl line 1" in one_error_line(outside)
    too_many = runner.invoke(app, _rank(runs, "--run", "nb", "--truth", str(truth),
                                        "--samples", "100"))
    assert "at least 100 distinct subnets" in one_error_line(too_many)
    no_truth = runner.invoke(app, _rank(runs, "--run", "nb"))
    assert "--truth FILE or --standalone K" in one_error_line(no_truth)
    runless = runner.invoke(app, _rank(runs, "--space", NAME, "--standalone", "2"))
    assert "--standalone: expected --run NAME" in one_error_line(runless)


def test_search_shows_the_ranking_and_warns_when_params_rank_better(
    trained: tuple[Path, Path],
) -> None:
    runs, _ = trained
    folder = runs / "nb" / "rank" / "zz-newest"
    folder.mkdir(parents=True)
    tau = {"kendall_tau": {"value": 0.1, "low": -0.1, "high": 0.3}}
    report = {"n": 50, "scores": {"supernet": tau,
                                  "params": {"kendall_tau": {"value": 0.6, "low": 0.5,
                                                             "high": 0.7}}}}
    (folder / "report.json").write_text(json.dumps(report))
    search = ["search", "--run", "nb", "--device", "cpu", "--objectives", "top1,params",
              "--budget", "8", "--population", "4", "--runs-dir", str(runs)]
    result = runner.invoke(app, [*search, "--tag", "trust"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps at 80 columns
    assert "supernet Kendall tau 0.100 [-0.10, 0.30], parameter count 0.600" in text
    assert "no better than their parameter count" in text
    pareto = json.loads((runs / "nb" / "search" / "trust" / "pareto.json").read_text())
    assert pareto["ranking"]["tag"] == "zz-newest"
    screened = runner.invoke(app, [*search, "--tag", "proxy", "--accuracy", "proxy:synflow",
                                   "--json"])
    assert screened.exit_code == 0, screened.output
    assert json.loads(screened.stdout)
    unknown = runner.invoke(app, [*search, "--accuracy", "proxy:nope"])
    assert "nope" in one_error_line(unknown)


def test_val_images_scores_on_the_first_images_and_keeps_its_own_folder(
    trained: tuple[Path, Path],
) -> None:
    from nas.artifacts import RunDir
    from nas.supernet.trained import TrainedSupernet

    runs, truth = trained
    supernet = TrainedSupernet.load(RunDir(runs, "nb"))
    arch = supernet.space.sample(np.random.default_rng(0))
    full = supernet.evaluate(arch, batch_size=32)
    few = supernet.evaluate(arch, batch_size=32, max_images=40)  # crosses a batch boundary
    assert few["n"] == 40 < full["n"]
    args = _rank(runs, "--run", "nb", "--truth", str(truth), "--samples", "6", "--tag", "few")
    result = runner.invoke(app, [*args, "--val-images", "40", "--json"])
    assert result.exit_code == 0, result.output
    settings = json.loads((runs / "nb" / "rank" / "few" / "settings.json").read_text())
    assert settings["val_images"] == 40
    # the CPU cost of each score is recorded beside its wall-clock time, and reported
    assert json.loads(result.stdout)["cpu_seconds_per_subnet"]["supernet"] > 0
    lines = (runs / "nb" / "rank" / "few" / "scores.jsonl").read_text().splitlines()
    assert all(json.loads(line)["cpu_seconds"]["supernet"] > 0 for line in lines)
    # the same folder with every image would mix two settings: refused in one line
    assert "val_images" in one_error_line(runner.invoke(app, args))
    assert "--val-images" in one_error_line(runner.invoke(app, [*args, "--val-images", "0"]))
