"""`rank_subnets` with subnets trained alone (killed and resumed), the score log, the trust a
search reads back, and a run-less ranking against the real NAS-Bench-201 table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.artifacts import RunDir
from nas.errors import ConfigError
from nas.rank.pipeline import RankConfig, RankTarget, rank_subnets
from nas.rank.scores import ScoreLog
from nas.rank.trust import supernet_trust
from nas.search.screen import ProxyScreen
from nas.train.subnet import train_for_ranking
from tests.fixtures.tiny_nb201 import TinyNB201Space, register, train_tiny_run

NAME = register()


def test_standalone_truth_survives_a_kill_and_resumes(tmp_path: Path) -> None:
    train_tiny_run(tmp_path, "nb")  # checkpoints every step: so do its subnets' trainings
    cfg = RankConfig(standalone=2, standalone_epochs=1, standalone_steps=2, bootstrap=10)
    target = RankTarget(tmp_path, run="nb", tag="alone")
    trained: list[str] = []

    def killed_in_the_second(space: Any, arch: Any, layout: Any, **options: Any) -> float:
        trained.append(layout.path.name)
        if len(trained) == 2:
            report = options["progress"]

            def kill(step: int, total: int) -> None:
                report(step, total)
                if step == 2:  # after step 1's checkpoint, before step 2's
                    raise KeyboardInterrupt

            options["progress"] = kill
        return train_for_ranking(space, arch, layout, **options)

    with pytest.raises(KeyboardInterrupt):
        rank_subnets(cfg, target, train_alone=killed_in_the_second)
    folder = RunDir(tmp_path, "nb").rank_dir("alone")
    second = folder / "standalone" / trained[1] / "train"
    assert (second / "checkpoint.pt").is_file() and not (second / "weights.safetensors").exists()
    steps: list[tuple[str, int]] = []

    def counted(space: Any, arch: Any, layout: Any, **options: Any) -> float:
        report = options["progress"]
        options["progress"] = lambda step, total: (steps.append((layout.path.name, step)),
                                                   report(step, total))
        return train_for_ranking(space, arch, layout, **options)

    result = rank_subnets(cfg, target, train_alone=counted)
    # the first subnet's truth was kept; the second continued from its step-1 checkpoint
    assert result.computed == 1 and steps == [(trained[1], 2)]
    assert (second / "weights.safetensors").is_file()
    report = result.report
    assert report["n"] == 2 and report["truth"]["standalone"] == 2
    assert all(0.0 <= row["truth"] <= 100.0 for row in report["subnets"])
    assert {"supernet", "params", "macs"} == set(report["scores"])
    assert report["seconds_per_subnet"]["truth"] > 0


def test_score_log_merges_lines_and_refuses_other_settings(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path, {"seed": 0, "space": ("a", 1)})
    log.add("x", {"naswot": -np.inf}, {"naswot": 0.5})
    log.add("x", {"supernet": 12.5}, {"supernet": 1.0})
    again = ScoreLog(tmp_path, {"seed": 0, "space": ("a", 1)})  # tuples compare as lists
    assert again.values == {"x": {"naswot": -np.inf, "supernet": 12.5}}
    assert again.missing("x", ["supernet", "synflow"]) == ["synflow"]
    with pytest.raises(ConfigError, match="'seed' was 0, got 1"):
        ScoreLog(tmp_path, {"seed": 1, "space": ["a", 1]})


def test_score_log_writes_strict_json_and_reads_every_non_finite_back(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path, {"seed": 0})
    log.add("x", {"a": -np.inf, "b": np.inf, "c": np.nan, "d": 1.0}, {"a": 0.5})

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    for line in (tmp_path / "scores.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    values = ScoreLog(tmp_path, {"seed": 0}).values["x"]
    assert values["a"] == -np.inf and values["b"] == np.inf and values["d"] == 1.0
    assert np.isnan(values["c"])


def _report(folder: Path, supernet: float | None, params: float, *, age: int) -> None:
    folder.mkdir(parents=True)
    scores = {"params": {"kendall_tau": {"value": params, "low": None, "high": None}}}
    if supernet is not None:
        scores["supernet"] = {"kendall_tau": {"value": supernet, "low": 0.1, "high": 0.9}}
    path = folder / "report.json"
    path.write_text(json.dumps({"n": 30, "scores": scores}))
    os.utime(path, (1e9 - age, 1e9 - age))  # "newest" must not hang on the clock's grain


def test_trust_reads_the_newest_report_with_a_supernet(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "r")
    assert supernet_trust(run) is None
    _report(run.rank_dir("good"), 0.7, 0.5, age=30)
    trust = supernet_trust(run)
    assert trust is not None and trust.warning is None and trust.tag == "good"
    assert "supernet Kendall tau 0.700 [0.10, 0.90], parameter count 0.500" in trust.summary
    _report(run.rank_dir("proxies-only"), None, 0.9, age=10)  # newest, no supernet: passed over
    _report(run.rank_dir("tie"), 0.5, 0.5, age=20)
    warned = supernet_trust(run)
    assert warned is not None and warned.tag == "tie"
    assert "no better than their parameter count" in str(warned.warning)


class _FixedProxy:
    """A proxy scorer with given values (and a count of the subnets it scored)."""

    def __init__(self, space: Any, values: dict[str, float]) -> None:
        self.space, self.values, self.calls = space, values, 0

    def score(self, arch: Any, names: Any) -> dict[str, Any]:
        from nas.rank.proxies import ProxyScore

        self.calls += 1
        return {names[0]: ProxyScore(self.values[arch["edge_1_0"]], 0.0, 0.0)}


def test_proxy_screen_fits_accuracy_on_the_proxy_and_computes_it_once() -> None:
    space = TinyNB201Space()
    scorer = _FixedProxy(space, {"nor_conv_3x3": 1e6, "nor_conv_1x1": 1e3, "skip_connect": 10.0,
                                 "avg_pool_3x3": 1.0, "none": -np.inf})
    screen = ProxyScreen(scorer, "synflow", warmup=2)  # type: ignore[arg-type]
    archs = [{**space.largest(), "edge_1_0": op} for op in scorer.values]
    top1 = np.array([80.0, 60.0, 40.0, 30.0, 10.0])
    screen.observe(archs, top1)
    predicted = screen.predict(archs)
    assert predicted[0] > predicted[1] > predicted[2] > predicted[3]  # monotone in the proxy
    assert predicted[4] == -np.inf  # a degenerate network predicts the worst
    assert scorer.calls == 5  # each subnet scored once, however often it is asked about


def test_rank_against_the_real_nb201_table(nb201_csv: Path, tmp_path: Path) -> None:
    cfg = RankConfig(truth=str(nb201_csv), truth_column="cifar10_test_top1", samples=40,
                     bootstrap=0)
    target = RankTarget(tmp_path, space=NAME, dataset="synthetic", image_size=16)
    result = rank_subnets(cfg, target)
    assert result.report["n"] == 40 and result.report["truth"]["column"] == "cifar10_test_top1"
    # the parameter count alone ranks NB201 cells at about 0.58 (../shared/data/README.md)
    assert result.metrics["params"].kendall_tau.value > 0.3
