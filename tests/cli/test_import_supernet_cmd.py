"""`nas import-supernet ofa`: a run made from an OFA checkpoint, used by later stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from tests.fixtures.ofa.fixture import RESNET, load_ofa_fixture

runner = CliRunner()


@pytest.fixture(scope="module")
def ofa_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A width-reduced OFAResNets checkpoint saved as OFA saves it."""
    path = tmp_path_factory.mktemp("ofa") / "ofa_resnet50_w0.25"
    torch.save({"state_dict": load_ofa_fixture(RESNET).state}, path)
    return path


def test_import_then_eval_the_smallest_subnet(ofa_checkpoint: Path, runs_dir: Path) -> None:
    result = runner.invoke(app, [
        "import-supernet", "ofa", str(ofa_checkpoint), "--run", "ofa", "--dataset",
        "synthetic", "--resolutions", "32,64",
    ])
    assert result.exit_code == 0, result.output
    assert "OFAResNets" in result.output and "width_scale 0.25" in result.output
    assert (runs_dir / "ofa" / "supernet" / "weights.safetensors").is_file()
    evaluated = runner.invoke(app, [
        "eval", "--run", "ofa", "--subnet", "min", "--batch-size", "128", "--json",
    ])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["n"] > 0


def test_without_data_dir_the_command_says_what_is_missing(
    ofa_checkpoint: Path, runs_dir: Path
) -> None:
    result = runner.invoke(app, ["import-supernet", "ofa", str(ofa_checkpoint), "--run", "r"])
    assert result.exit_code == 0, result.output
    assert "no --data-dir" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "r"], "no such file"),
    (["--run", "r", "--space", "darts"], "expected ofa-mbv3 or ofa-resnet50"),
    (["--run", "r", "--resolutions", "big"], "--resolutions: expected integers"),
    (["--run", "r", "--dataset", "imagenet"], "imagenet"),
    (["--run", "r", "--data-dir", "/no/such/folder"], "--data-dir: /no/such/folder is not"),
])
def test_bad_input_is_one_line_and_exit_code_2(
    args: list[str], message: str, ofa_checkpoint: Path, runs_dir: Path
) -> None:
    file = "absent.pth" if message == "no such file" else str(ofa_checkpoint)
    result = runner.invoke(app, ["import-supernet", "ofa", file, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
