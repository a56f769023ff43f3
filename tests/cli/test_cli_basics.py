from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir
from nas.commands.runs import stage_result

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "runs" in result.output


def test_runs_list_and_show(runs_dir: Path) -> None:
    run = RunDir(runs_dir, "demo")
    run.begin_stage("train-supernet", config={"epochs": 1}, seed=3, device="cpu")
    run.end_stage("train-supernet")
    listed = runner.invoke(app, ["runs", "list", "--json"])
    assert listed.exit_code == 0
    assert [r["name"] for r in json.loads(listed.output)] == ["demo"]
    shown = runner.invoke(app, ["runs", "show", "demo", "--json"])
    assert json.loads(shown.output)["stages"]["train-supernet"]["seed"] == 3
    table = runner.invoke(app, ["runs", "show", "demo"])
    assert table.exit_code == 0 and "train-supernet" in table.output


def test_user_error_is_one_line_exit_2_without_traceback(runs_dir: Path) -> None:
    result = runner.invoke(app, ["runs", "show", "missing"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: run 'missing' not found")
    assert "Traceback" not in result.output


def test_console_script_error_path(tmp_path: Path) -> None:
    """The installed entry point behaves the same in a real process (stderr, exit 2)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import cli; cli.main()",
            "runs",
            "show",
            "nope",
            "--runs-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_command_line_is_one_line_exit_2() -> None:
    for argv in (["runs", "list", "--bogus"], ["no-such-command"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, argv
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output


def test_runs_show_lists_stages_in_pipeline_order_with_results(runs_dir: Path) -> None:
    run = RunDir(runs_dir, "ordered")
    for stage, summary in (
        ("search-default", {"front": 7, "scored": 40}),
        ("profile-cpu", {"chosen": "ridge", "within10": 0.93, "poor": False}),
        ("train-supernet", {"steps": 264, "val": {"largest": {"top1": 91.5}}}),
    ):
        run.begin_stage(stage, config={}, seed=0, device="cpu")
        run.end_stage(stage, summary=summary)
    shown = runner.invoke(app, ["runs", "show", "ordered"])
    assert shown.exit_code == 0
    out = shown.output  # 80 columns: results fold onto more lines, never cut with "..."
    assert out.index("train-supernet") < out.index("profile-cpu") < out.index("search-default")
    assert "…" not in out and "264 steps" in out
    assert stage_result("train-supernet", run.manifest()["stages"]["train-supernet"]["summary"]) \
        == "largest val top-1 91.50%; 264 steps"
    assert stage_result("profile-cpu", {"chosen": "ridge", "within10": 0.93, "poor": True}) \
        == "predictor ridge, 93% within ±10% (poor)"
    search = stage_result("search-default", {"front": 7, "scored": 40})
    assert search == "front of 7 from 40 scored"
    listed = runner.invoke(app, ["runs", "list"])
    assert listed.output.index("train-supernet:done") < listed.output.index("search-default")


def test_runs_plot_redraws_the_curves_of_a_killed_training(runs_dir: Path) -> None:
    run = RunDir(runs_dir, "killed")
    run.begin_stage("train-supernet", config={})
    log = run.sub("supernet", "metrics.jsonl")
    log.write_text("".join(json.dumps({"step": s, "loss": 2.0 / s, "lr": 0.1}) + "\n"
                           for s in range(1, 6)))
    result = runner.invoke(app, ["runs", "plot", "killed"])
    assert result.exit_code == 0, result.output
    png = run.supernet_dir / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "curves.png" in result.output
    log.write_text("")
    empty = runner.invoke(app, ["runs", "plot", "killed"])
    assert empty.exit_code == 2 and "no training log" in empty.output
