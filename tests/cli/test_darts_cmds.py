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
    assert not (runs_dir / "bad").exists()  # no run folder, so no stage left "interrupted"
    bad_arch = runner.invoke(app, ["train", "--run", "bad", "--arch", '{"depth": "x"}'])
    assert bad_arch.exit_code == 2 and not (runs_dir / "bad").exists(), bad_arch.output


@pytest.mark.slow
def test_train_supernet_space_darts_yields_a_genotype(runs_dir: Path) -> None:
    result = runner.invoke(app, ["train-supernet", "--run", "s1", "--space", "darts",
                                 "--method", "pc-darts", "--width-mult", "0.5",
                                 "--dataset", "synthetic", "--image-size", "16", "--epochs", "1",
                                 "--batch-size", "8", "--max-steps", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    genotype = json.loads((runs_dir / "s1" / "genotype.json").read_text())
    assert len(genotype["normal"]) == 8 and genotype["normal_concat"] == [2, 3, 4, 5]
    summary = json.loads((runs_dir / "s1" / "supernet" / "summary.json").read_text())
    assert summary["method"] == "pc-darts" and summary["config"]["init_channels"] == 8
    record = json.loads((runs_dir / "s1" / "arch.json").read_text())
    assert record["subnet"] == genotype and record["arch"].startswith("Genotype(normal=")
    from search_spaces.darts.genotypes import load_genotype_argument

    assert load_genotype_argument(str(runs_dir / "s1" / "arch.json")) == genotype


def test_space_show_darts_genotype_counts_the_eval_network(tmp_path: Path) -> None:
    genotype = tmp_path / "g.txt"
    genotype.write_text(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
        "reduce_concat=[2, 3, 4, 5])"
    )
    result = runner.invoke(app, ["space", "show", "darts", "--genotype", str(genotype),
                                 "--init-channels", "36", "--layers", "20", "--num-classes", "10",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["params"] == 3_349_342
    assert report["macs"] == 528_359_040
    named = runner.invoke(app, ["space", "show", "darts", "--genotype", "DARTS_V2",
                                "--init-channels", "36", "--layers", "20", "--json"])
    assert json.loads(named.output)["params"] == 3_349_342
