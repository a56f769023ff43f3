"""`nas quickstart` end to end with even smaller settings, then again (every stage skipped)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nas.commands.quickstart as quickstart
from cli import app
from nas.artifacts import RunDir

runner = CliRunner()


@dataclasses.dataclass(frozen=True)
class TinySettings(quickstart.QuickstartSettings):
    epochs: int = 1
    max_steps: int | None = 3
    batch_size: int = 16
    resolutions: str = "12"
    profile_samples: int = 6
    profile_minutes: float = 0.3
    search_budget: int = 4
    population: int = 4


@pytest.mark.slow
def test_quickstart_runs_every_stage_then_skips_them(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quickstart, "QuickstartSettings", TinySettings)
    args = ["quickstart", "--run", "qs", "--runs-dir", str(runs_dir)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    run = RunDir(runs_dir, "qs")
    for path in ("supernet/weights.safetensors", "profile/cpu/latency.jsonl",
                 "predictor/cpu/selected.json", "search/quickstart/pareto.json"):
        assert (run.path / path).is_file(), path
    stages = run.manifest()["stages"]
    assert stages["train-supernet"]["status"] == "done"
    assert stages["search-quickstart"]["status"] == "done"
    assert stages["export"]["status"] == "done"
    out = Path(stages["export"]["summary"]["out_dir"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["provenance"]["search_tag"] == "quickstart"
    pareto = json.loads((run.path / "search" / "quickstart" / "pareto.json").read_text())
    budget = pareto["constraints"][0]["max"]
    assert metrics["arch_id"] in {m["arch_id"] for m in pareto["front"]}
    assert all(m["values"]["latency_ms"] <= budget for m in pareto["front"])
    assert "next:" in first.output and "nas export" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("already done, skipped") == 4


def test_quickstart_exports_the_fastest_when_all_were_measured_over(tmp_path: Path) -> None:
    from nas.artifacts import atomic_write_json
    from nas.quickstart import TAG, _pick_rule

    run = RunDir(tmp_path, "qs")
    member = {"arch": {"depth": [2]}, "values": {"top1": 50.0, "latency_ms": 4.0}}
    front = [{**member, "arch_id": "a", "measured_latency_ms": 5.5},
             {**member, "arch_id": "b", "measured_latency_ms": 4.9}]
    pareto = {"front": front, "constraints": [{"metric": "latency_ms", "max": 4.7, "min": None}]}
    atomic_write_json(run.sub("search", TAG, "pareto.json"), pareto)
    assert _pick_rule(run) == "1"  # the faster of the two, though over the budget
    front[1]["measured_latency_ms"] = 4.5
    atomic_write_json(run.sub("search", TAG, "pareto.json"), pareto)
    assert _pick_rule(run) == "best"  # one member within the budget: the usual rule
