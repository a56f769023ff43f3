"""`nas export` on a run imported from Once-for-All: `--no-bn-recalibration` reproduces OFA's
own subnet (`get_active_subnet(preserve_weight=True)`), `--out`, `--format ofa`, and where the
weights came from (`nas runs show`, the model card).

OFA's logits are REFERENCE VALUES FROM THE PEER, recorded in the committed fixture
(tests/fixtures/ofa/, made with the `ofa` package)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from nas.export import load_exported
from tests.fixtures.ofa.fixture import RESNET, OFAFixture, load_ofa_fixture

runner = CliRunner()
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture() -> OFAFixture:
    return load_ofa_fixture(RESNET)


@pytest.fixture
def imported(fixture: OFAFixture, runs_dir: Path, tmp_path: Path) -> Path:
    """Run `ofa` imported from the width-reduced OFAResNets fixture, synthetic data."""
    path = tmp_path / RESNET
    torch.save({"state_dict": fixture.state}, path)
    result = runner.invoke(app, ["import-supernet", "ofa", str(path), "--run", "ofa",
                                 "--dataset", "synthetic", "--resolutions", "128"])
    assert result.exit_code == 0, result.output
    return runs_dir / "ofa"


def export(*args: str) -> Any:
    result = runner.invoke(app, ["export", "--run", "ofa", *args])
    assert result.exit_code == 0, result.output
    return result


def logits(folder: Path, fixture: OFAFixture, case: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = load_exported(folder, fuse_bn=False)(fixture.case_input(case))
    return out


@pytest.mark.slow  # two exports with data: ~30 s on the shared 2-core machine
def test_without_recalibration_the_export_gives_ofas_logits(
    imported: Path, fixture: OFAFixture, tmp_path: Path
) -> None:
    case = fixture.cases[1]  # the smallest subnet, 128 px
    pick = json.dumps({**case["config"], "r": case["r"]})
    kept, recalibrated = tmp_path / "kept", tmp_path / "recalibrated"
    export("--pick", pick, "--format", "pytorch", "--no-bn-recalibration", "-o", str(kept))
    expected = fixture.logits[case["name"]]
    assert float((logits(kept, fixture, case) - expected).abs().max()) <= TOLERANCE
    export("--pick", pick, "--format", "pytorch", "--calib-batches", "1", "-o",
           str(recalibrated))
    assert float((logits(recalibrated, fixture, case) - expected).abs().max()) > 1e-2
    metrics = json.loads((kept / "metrics.json").read_text())
    assert metrics["bn_calibration"]["batches"] == 0
    card = (kept / "model_card.md").read_text()
    assert "BN statistics: kept as stored in the supernet" in card
    assert f"weights_from: `imported from {RESNET} (OFAResNets, sha256 " in card
    assert not (imported / "export").exists()  # --out: nothing written into the run


def test_runs_show_says_where_the_weights_came_from(imported: Path) -> None:
    shown = runner.invoke(app, ["runs", "show", "ofa"])
    assert shown.exit_code == 0, shown.output
    assert f"weights: imported from {RESNET} (OFAResNets, sha256" in shown.output
    assert "space ofa-resnet50, width_scale 0.25" in shown.output


def test_format_ofa_writes_the_supernet_as_ofa_saves_it(
    imported: Path, fixture: OFAFixture
) -> None:
    result = export("--format", "ofa", "--json")
    meta = json.loads(result.output)
    file = Path(meta["out_dir"]) / meta["file"]
    assert file.parent == imported / "export" / "ofa"
    written = torch.load(file, weights_only=True)["state_dict"]
    assert all(torch.equal(written[key], value) for key, value in fixture.state.items())
    shown = export("--format", "ofa")
    assert "round trip: read back bit for bit equal" in shown.output


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "ofa", "--pick", "0"], "--pick: --format ofa writes the whole supernet"),
    (["--format", "ofa", "--no-bn-recalibration"], "--no-bn-recalibration: --format ofa"),
    (["--format", "ofa,onnx"], "run `nas export --format ofa` on its own"),
    (["--no-bn-recalibration", "--calib-batches", "3"], "give one of them"),
])
def test_conflicting_options_are_one_line_exit_2(
    imported: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["export", "--run", "ofa", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
