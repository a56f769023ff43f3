"""`nas train-supernet` on the NAS-Bench-201 supernet, end to end through the CLI.

On the tiny NB201 space of tests/fixtures/tiny_nb201.py: the same class, supernet and training
path as `--space nb201`, at test speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from nas.artifacts import RunDir
from search_spaces.nb201 import NB201Space
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


def _train(method: str, run: str, steps: int, *options: str) -> Result:
    """A one-epoch `train-supernet` of the tiny space on synthetic 16 px images."""
    return runner.invoke(app, [
        "train-supernet", "--space", NAME, "--method", method, "--dataset", "synthetic",
        "--image-size", "16", "--batch-size", "8", "--epochs", "1", "--max-steps", str(steps),
        "--run", run, *options,
    ])


def test_nb201_trains_single_path_with_spos(runs_dir: Path) -> None:
    result = _train("spos", "sp", 2, "--resolutions", "16", "--quiet")
    assert result.exit_code == 0, result.output
    lines = (RunDir(runs_dir, "sp").path / "supernet" / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["phase"] == "spos" and "loss_random" in record and "loss_largest" not in record


def test_a_darts_family_method_prints_the_found_cell_as_the_nb201_string(
    runs_dir: Path, tmp_path: Path
) -> None:
    result = _train("darts", "dn", 2, "--space-option", "cells_per_stage=2", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    record = json.loads((runs_dir / "dn" / "arch.json").read_text())
    assert printed["arch"] == record["arch"] and printed["arch"].startswith("|")
    assert NB201Space().normalize(printed["arch"]) == printed["subnet"] == record["subnet"]
    assert printed["run"] == "dn" and printed["steps"] == 2
    summary = json.loads((runs_dir / "dn" / "supernet" / "summary.json").read_text())
    assert summary["supernet"]["channels"] == 4  # the space's default, not DARTS' 16
    assert summary["supernet"]["cells_per_stage"] == 2  # --space-option sizes the search too


@pytest.mark.slow
def test_a_searchs_space_options_are_kept_on_resume_and_may_not_change(runs_dir: Path) -> None:
    first = _train("rarts", "so", 1, "--space-option", "cells_per_stage=2", "--quiet")
    assert first.exit_code == 0, first.output
    changed = runner.invoke(app, ["train-supernet", "--run", "so", "--resume",
                                  "--space-option", "cells_per_stage=1"])
    assert changed.exit_code == 2 and "space_options" in changed.output, changed.output
    resumed = runner.invoke(app, ["train-supernet", "--run", "so", "--resume", "--max-steps",
                                  "2", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((runs_dir / "so" / "supernet" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["supernet"]["cells_per_stage"] == 2


@pytest.mark.parametrize(("options", "message"), [
    (["--method", "rarts", "--rome-samples", "2"], None),
    (["--method", "spos", "--init-channels", "8"], "DARTS-family --method"),
    (["--method", "darts", "--layers", "3"], "only used with --space darts"),
    (["--method", "darts", "--init-channels", "8", "--space-option", "channels=4"],
     "--init-channels"),
    (["--method", "gdas", "--space-option", "colour=4"], "colour"),
    (["--method", "rome", "--partial-channels", "2"], "only used by --method pc-darts"),
])
def test_options_a_method_ignores_are_one_line_errors(
    options: list[str], message: str | None, runs_dir: Path, tmp_path: Path
) -> None:
    if message is None:  # method options without a flag come from a config file
        config = tmp_path / "rome.yaml"
        config.write_text("rome_samples: 2\n")
        options, message = [options[0], options[1], "--config", str(config)], "--method rome"
    result = runner.invoke(app, ["train-supernet", "--space", NAME, "--run", "x",
                                 "--dataset", "synthetic", *options])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


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
