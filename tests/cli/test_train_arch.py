"""`nas train --arch`: one subnet of any space trained alone, resumed, then exported."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from nas.arch import arch_id
from nas.artifacts import RunDir
from tests.fixtures.cli_errors import one_error_line
from tests.fixtures.tiny_nb201 import ARCH, register

runner = CliRunner()
NAME = register()
TINY = ["--space", NAME, "--dataset", "synthetic", "--image-size", "16", "--batch-size", "16",
        "--epochs", "1", "--quiet"]


def test_train_an_arch_resume_it_and_export_it(runs_dir: Path) -> None:
    first = runner.invoke(app, ["train", "--run", "a", "--arch", json.dumps(ARCH), *TINY,
                                "--max-steps", "2"])
    assert first.exit_code == 0, first.output
    run = RunDir(runs_dir, "a")
    assert json.loads(run.trained_arch.read_text()) == ARCH
    assert run.trained_weights.is_file() and (run.train_dir / "checkpoint.pt").is_file()
    stage = run.manifest()["stages"]["train"]
    assert stage["status"] == "done" and stage["summary"]["steps"] == 2
    assert not stage["summary"]["completed"] and 0.0 <= stage["summary"]["test_acc"] <= 1.0
    assert run.manifest()["space"]["name"] == NAME
    again = runner.invoke(app, ["train", "--run", "a", "--arch", json.dumps(ARCH), *TINY])
    assert "already trained" in one_error_line(again)
    resumed = runner.invoke(app, ["train", "--run", "a", "--arch", json.dumps(ARCH), *TINY,
                                  "--max-steps", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert run.manifest()["stages"]["train"]["summary"]["steps"] == 3
    exported = runner.invoke(app, ["export", "--run", "a", "--format", "pytorch", "--json"])
    assert exported.exit_code == 0, exported.output
    metrics = json.loads(exported.output)
    assert metrics["status"] == "ok" and metrics["arch_id"] == arch_id(ARCH)
    assert metrics["provenance"]["pick_reason"] == "the network trained from train/arch.json"


def test_options_of_the_other_kind_of_training_are_refused(runs_dir: Path) -> None:
    darts_only = runner.invoke(app, ["train", "--run", "b", "--arch", "max", *TINY,
                                     "--drop-path", "0.1"])
    assert "--drop-path: not an option of --arch" in one_error_line(darts_only)
    arch_only = runner.invoke(app, ["train", "--run", "b", "--space-option", "channels=8"])
    assert "--space-option: not an option of --genotype" in one_error_line(arch_only)
    both = runner.invoke(app, ["train", "--run", "b", "--arch", "max", "--genotype", "DARTS_V2"])
    assert "got both" in one_error_line(both)
