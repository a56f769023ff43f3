"""`nas export` and `nas finetune` on a hand-made run: an untrained tiny supernet saved as a
trained one, a synthetic dataset, and a hand-written Pareto front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from nas.arch import arch_id
from nas.artifacts import RunDir, atomic_write_json
from nas.supernet.weights import save_weights
from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space

runner = CliRunner()
TRAIN_CONFIG = {"dataset": "synthetic", "image_size": 16, "seed": 0,
                "bn_calibration_batches": 2, "eval_batch_size": 64}


def _space() -> OFAMobileNetV3Space:
    return OFAMobileNetV3Space(num_classes=10, resolutions=[12, 16], image_size=16)


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/demo with supernet weights and search/s1/pareto.json (3 members)."""
    root = tmp_path_factory.mktemp("runs")
    run = RunDir(root, "demo")
    space = _space()
    run.begin_stage("train-supernet", config=TRAIN_CONFIG, seed=0, device="cpu",
                    argv=["/venv/bin/nas", "train-supernet", "--run", "demo"])
    run.update_manifest(space=space.spec())
    save_weights(run, space.build_supernet(), space_spec=space.spec(), train_config=TRAIN_CONFIG)
    run.end_stage("train-supernet")
    rng = np.random.default_rng(0)
    archs = [space.smallest(), space.sample(rng), space.sample(rng)]
    members = [
        {"arch": a, "arch_id": arch_id(a), "values": {"top1": t, "latency_ms": lat},
         "violation": 0.0}
        for a, t, lat in zip(archs, (50.0, 70.0, 60.0), (1.0, 3.0, 2.0), strict=True)
    ]
    run.begin_stage("search-s1", config={"budget": 3}, argv=["nas", "search", "--run", "demo"])
    atomic_write_json(run.path / "search" / "s1" / "pareto.json", {
        "device": "cpu", "space": space.spec(), "run": "demo",
        "objectives": [{"name": "top1", "direction": "maximize", "unit": "%"},
                       {"name": "latency_ms", "direction": "minimize", "unit": "ms"}],
        "constraints": [{"metric": "latency_ms", "max": 2.5, "min": None}],
        "config": {"batch_size": 64, "device": "cpu"}, "front": members,
    })
    run.end_stage("search-s1")
    return root


def _export(run_root: Path, *args: str) -> Any:
    return runner.invoke(app, ["export", "--run", "demo", "--runs-dir", str(run_root), *args])


def _front(run_root: Path) -> list[dict[str, Any]]:
    data = json.loads((run_root / "demo" / "search" / "s1" / "pareto.json").read_text())
    members: list[dict[str, Any]] = data["front"]
    return members


def test_export_best_writes_the_model_card(run_root: Path) -> None:
    result = _export(run_root, "--format", "pytorch,onnx")
    assert result.exit_code == 0, result.output
    best = _front(run_root)[2]  # 70 % breaks latency <= 2.5; the 60 % one is best
    out = run_root / "demo" / "export" / best["arch_id"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["arch_id"] == best["arch_id"] and metrics["status"] == "ok"
    assert set(metrics["parity"]) == {"pytorch", "onnx"}
    # the printed parity table names the form each written file takes
    assert metrics["deploy"]["onnx"]["form"]["label"].split(",")[0] in result.output
    assert not (out / "model.pt").exists()
    prov = metrics["provenance"]
    assert prov["run"] == "demo" and prov["search_tag"] == "s1" and prov["pick"] == "best"
    assert prov["commands"][0] == "nas train-supernet --run demo"
    assert "cpu" in metrics["latency"]["measured"]
    assert metrics["latency"]["measured"]["cpu"]["median_ms"] > 0
    card = (out / "model_card.md").read_text()
    for text in (best["arch_id"], "validation top-1", "test top-1", "MACs", "parameters",
                 "search_tag: `s1`", "nas train-supernet --run demo", "git revision",
                 "`cpu`: measured", "model.onnx", "load_exported"):
        assert text in card, text
    manifest = RunDir(run_root, "demo").manifest()
    assert manifest["stages"]["export"]["status"] == "done"
    assert manifest["stages"]["export"]["summary"]["arch_id"] == best["arch_id"]


def test_export_index_to_a_chosen_folder_as_json(run_root: Path, tmp_path: Path) -> None:
    result = _export(run_root, "--pick", "0", "--format", "pytorch", "-o", str(tmp_path / "x"),
                     "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["arch_id"] == _front(run_root)[0]["arch_id"]
    assert (tmp_path / "x" / "weights.safetensors").is_file()


def test_export_latency_budget_and_ofa_config(run_root: Path, tmp_path: Path) -> None:
    result = _export(run_root, "--pick", "latency<=1.5", "--format", "pytorch",
                     "-o", str(tmp_path / "lat"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["arch_id"] == _front(run_root)[0]["arch_id"]
    ofa = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 12}
    result = _export(run_root, "--pick", json.dumps(ofa), "--format", "pytorch",
                     "-o", str(tmp_path / "ofa"), "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["arch"]["resolution"] == 12 and metrics["arch"]["depth"] == [2] * 5
    assert metrics["provenance"]["search_tag"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pick", "7"], "expected an index in 0..2"),
        (["--pick", "latency<=0.01"], "no front member is that fast"),
        (["--pick", "cheapest"], "expected best, an index"),
        (["--pick", '{"ks": [9]}'], "error:"),
        (["--format", "tflite"], "unknown format 'tflite'"),
        (["--search", "nope"], "no search 'nope'"),
        (["--pick", "latency<=5", "--device", "phone"], "nas profile"),
    ],
)
def test_export_errors_are_one_line_exit_2(run_root: Path, args: list[str], message: str) -> None:
    result = _export(run_root, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and message in lines[0]


def test_export_of_a_missing_run_is_exit_2(run_root: Path) -> None:
    result = runner.invoke(app, ["export", "--run", "ghost", "--runs-dir", str(run_root)])
    assert result.exit_code == 2 and "run 'ghost' not found" in result.output


@pytest.mark.slow  # one epoch of training plus two re-exports: ~10 s on a busy 2-core CPU
def test_finetune_trains_resumes_and_reexports(run_root: Path, tmp_path: Path) -> None:
    export_dir = tmp_path / "e"
    assert _export(run_root, "--pick", "0", "--format", "pytorch", "-o",
                   str(export_dir)).exit_code == 0
    out = tmp_path / "ft"
    args = ["finetune", str(export_dir), "--epochs", "1", "--batch-size", "128", "-o", str(out),
            "--runs-dir", str(run_root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["provenance"]["finetuned_from"] == str(export_dir)
    assert set(metrics["parity"]) == {"pytorch"}  # the formats of the source export
    assert len((out / "finetune.jsonl").read_text().splitlines()) == 1
    # resume: the epoch is done, so a second call trains nothing more
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len((out / "finetune.jsonl").read_text().splitlines()) == 1
    # other options with the same folder are refused
    other = runner.invoke(app, [*args[:-2], "--lr", "0.5", "--runs-dir", str(run_root)])
    assert other.exit_code == 2 and "other options" in other.output


def test_parity_failure_is_exit_2_naming_the_format(
    run_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.export.parity as parity_module

    # onnxruntime differs from torch by ~1e-6: a zero limit must fail, naming the format
    monkeypatch.setitem(parity_module.TOLERANCES, "onnx", 0.0)  # type: ignore[index]
    result = _export(run_root, "--pick", "0", "--format", "onnx", "-o", str(tmp_path / "bad"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "onnx: max |logit difference|" in lines[0]
    metrics = json.loads((tmp_path / "bad" / "metrics.json").read_text())
    assert metrics["status"] == "parity_failed"
    stages = RunDir(run_root, "demo").manifest()["stages"]
    assert stages["export"]["status"] == "failed"


def test_export_of_a_network_trained_from_a_genotype(tmp_path: Path) -> None:
    """Runs of `nas train --genotype` hold one trained network: export it without a supernet."""
    from safetensors.torch import save_file

    from search_spaces.darts.space import DartsSpace

    space = DartsSpace(init_channels=4, layers=3, num_classes=10, image_size=16)
    genotype = space.sample(np.random.default_rng(0))
    net = space.build_network(genotype)
    run = RunDir(tmp_path, "g1")
    run.begin_stage("train", config={"genotype": "x", "dataset": "synthetic", "image_size": 16,
                                     "seed": 0}, argv=["nas", "train", "--genotype", "x"])
    run.update_manifest(space=space.spec())
    atomic_write_json(run.path / "genotype.json", genotype)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(run.sub("train", "weights.safetensors")))
    run.end_stage("train")
    result = runner.invoke(app, ["export", "--run", "g1", "--runs-dir", str(tmp_path),
                                 "--format", "pytorch,onnx", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["status"] == "ok" and metrics["arch_id"] == arch_id(space.normalize(genotype))
    assert metrics["provenance"]["commands"][0] == "nas train --genotype x"
    refused = runner.invoke(app, ["export", "--run", "g1", "--runs-dir", str(tmp_path),
                                  "--pick", "0"])
    assert refused.exit_code == 2 and "nothing to pick" in refused.output
