"""`nas train-supernet` on the NAS-Bench-201 supernet, end to end through the CLI.

On the tiny NB201 space of tests/fixtures/tiny_nb201.py: the same class, supernet and training
path as `--space nb201`, at test speed.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir
from tests.fixtures.tiny_nb201 import ARCH, register

runner = CliRunner()
NAME = register()


def test_train_three_steps_then_eval(runs_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "quick.yaml"  # few calibration batches: the test stays fast
    config.write_text("bn_calibration_batches: 2\neval_batch_size: 64\n")
    result = runner.invoke(app, [
        "train-supernet", "--space", NAME, "--dataset", "synthetic", "--image-size", "16",
        "--resolutions", "16", "--batch-size", "8", "--epochs", "1", "--max-steps", "3",
        "--config", str(config), "--run", "nb", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    run = RunDir(runs_dir, "nb")
    assert (run.path / "supernet" / "weights.safetensors").is_file()
    stage = run.manifest()["stages"]["train-supernet"]
    assert stage["status"] == "done" and stage["summary"]["steps"] == 3
    assert set(stage["summary"]["val"]) == {"largest", "smallest"}
    assert run.manifest()["space"]["name"] == NAME
    evaluated = runner.invoke(app, ["eval", "--run", "nb", "--subnet", json.dumps(ARCH),
                                    "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads(evaluated.output)
    assert record["arch"] == ARCH and record["n"] > 0
    assert 0.0 <= record["top1"] <= 100.0


def test_nb201_trains_single_path_with_spos(runs_dir: Path) -> None:
    result = runner.invoke(app, [
        "train-supernet", "--space", NAME, "--method", "spos", "--dataset", "synthetic",
        "--image-size", "16", "--resolutions", "16", "--batch-size", "8", "--epochs", "1",
        "--max-steps", "2", "--run", "sp", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    lines = (RunDir(runs_dir, "sp").path / "supernet" / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["phase"] == "spos" and "loss_random" in record and "loss_largest" not in record


def test_space_options_size_the_supernet(runs_dir: Path) -> None:
    result = runner.invoke(app, [
        "train-supernet", "--space", "nb201", "--space-option", "channels=4",
        "--space-option", "cells_per_stage=1", "--dataset", "synthetic", "--image-size", "16",
        "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--run", "small", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    kwargs = RunDir(runs_dir, "small").manifest()["space"]["kwargs"]
    assert kwargs["channels"] == 4 and kwargs["cells_per_stage"] == 1
    wrong = runner.invoke(app, ["train-supernet", "--space", "nb201", "--space-option",
                                "colour=4", "--dataset", "synthetic", "--run", "bad"])
    assert wrong.exit_code == 2 and "colour" in wrong.output and "channels" in wrong.output
    assert not (runs_dir / "bad" / "supernet").exists()
