"""CLI: `nas train --genotype`, `nas train-supernet --space darts`, `nas space show darts`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_train_genotype_writes_run_folder_and_resumes(runs_dir: Path) -> None:
    args = ["train", "--run", "e1", "--genotype", "PC_DARTS", "--dataset", "synthetic",
            "--image-size", "16", "--init-channels", "4", "--layers", "3", "--epochs", "2",
            "--batch-size", "16", "--max-steps", "1", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = runs_dir / "e1"
    genotype = json.loads((run / "genotype.json").read_text())
    assert genotype["normal"][0] == ["sep_conv_3x3", 1]
    assert (run / "train" / "weights.safetensors").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["space"]["name"] == "darts"
    assert manifest["stages"]["train"]["status"] == "done"
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = runner.invoke(app, [*args[:-3], "--max-steps", "2", "--resume", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((run / "train" / "summary.json").read_text())
    assert summary["steps"] == 2


def test_train_rejects_an_unknown_genotype(runs_dir: Path) -> None:
    result = runner.invoke(app, ["train", "--run", "bad", "--genotype", "NOT_A_GENOTYPE"])
    assert result.exit_code == 2
    assert "DARTS_V2" in result.output


@pytest.mark.slow
def test_train_supernet_space_darts_yields_a_genotype(runs_dir: Path) -> None:
    result = runner.invoke(app, ["train-supernet", "--run", "s1", "--space", "darts",
                                 "--dataset", "synthetic", "--image-size", "16", "--epochs", "1",
                                 "--batch-size", "8", "--max-steps", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    genotype = json.loads((runs_dir / "s1" / "genotype.json").read_text())
    assert len(genotype["normal"]) == 8 and genotype["normal_concat"] == [2, 3, 4, 5]
