"""`nas profile` end to end on the toy chain space (tiny convs, 8 px) and its error paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "nas" / "profile"))
import toy_space  # noqa: E402  # type: ignore[import-not-found]

from cli import app  # noqa: E402

runner = CliRunner()
TOY = ["--space", "toy-chain", "--image-size", "8"]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.slow
def test_profile_measures_fits_and_predicts(runs_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", *TOY, "--samples", "24", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_subnets"] == 24 and report["chosen"] in report["predictors"]
    assert report["fingerprint"]["cpu_model"]
    root = runs_dir / "_profiles" / "toy-chain-12px-cpu"
    assert (root / "profile" / "cpu" / "latency.jsonl").is_file()
    assert (root / "predictor" / "cpu" / "report.json").is_file()

    space = toy_space.ToyChainSpace()
    queries = tmp_path / "q.jsonl"
    archs = [space.largest(), space.smallest(), {"w": [8, 8, 8], "d": 2, "r": 8}]
    queries.write_text("\n".join(json.dumps(a) for a in archs) + "\n")
    predicted = runner.invoke(app, ["profile", "predict", str(queries), "--device", "cpu", *TOY,
                                    "--json"])
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)
    assert [r["arch"] for r in rows[:2]] == archs[:2]
    assert rows[0]["latency_ms"] > rows[1]["latency_ms"] > 0


@pytest.mark.slow
def test_import_then_predict(runs_dir: Path, tmp_path: Path) -> None:
    space = toy_space.ToyChainSpace()
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(120):
        arch = space.sample(rng)
        ms = 0.05 + space.complexity(arch)["macs"] / 1e6
        lines.append(json.dumps({"arch": {"w": arch["width"], "d": arch["depth"],
                                          "r": arch["resolution"]}, "latency_ms": ms}))
    data = tmp_path / "pixel.jsonl"
    data.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["profile", "import", str(data), "--device", "pixel7", *TOY])
    assert result.exit_code == 0, result.output
    assert "imported 120 subnet" in result.output and "ridge" in result.output
    refit = runner.invoke(app, ["profile", "fit", "--device", "pixel7", *TOY, "--predictor",
                                "ridge", "--json"])
    assert refit.exit_code == 0, refit.output
    assert json.loads(refit.stdout)["chosen"] == "ridge"
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps(space.largest()) + "\n")
    predicted = runner.invoke(app, ["profile", "predict", str(queries), "--device", "pixel7",
                                    *TOY, "--json"])
    truth = 0.05 + space.complexity(space.largest())["macs"] / 1e6
    row = json.loads(predicted.stdout)[0]
    assert row["latency_ms"] == pytest.approx(truth, rel=0.1)
    assert row["macs"] == space.complexity(space.largest())["macs"]


@pytest.mark.parametrize("args,expected", [
    (["profile", "--device", "cpu"], "expected exactly one of --run NAME or --space SPACE"),
    (["profile", "--run", "nope"], "run 'nope' not found"),
    (["profile", *TOY, "--device", "tpu"], "unknown device 'tpu'"),
    (["profile", *TOY, "--samples", "1"], "expected --samples >= 2"),
    (["profile", "predict", "missing.jsonl", "--device", "cpu", *TOY], "does not exist"),
    (["profile", "predict", "q.jsonl", "--device", "cpu", *TOY], "no latency predictor"),
    (["profile", "import", "bad.jsonl", "--device", "x", *TOY], "line 1: invalid JSON"),
])
def test_error_paths_are_one_line_exit_2(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(json.dumps({"w": [4, 4, 4], "d": 1}) + "\n")
    (tmp_path / "bad.jsonl").write_text("{nope\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert line.startswith("error:") and expected in line, line


@pytest.mark.slow
def test_profile_a_run_records_the_stage(runs_dir: Path) -> None:
    from nas.artifacts import RunDir
    from predictors import load_predictor

    run = RunDir(runs_dir, "r1")
    run.update_manifest(space=toy_space.ToyChainSpace(resolutions=[8]).spec())
    result = runner.invoke(app, ["profile", "--run", "r1", "--samples", "12", "--no-blocks",
                                 "--clock", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    stage = run.manifest()["stages"]["profile-cpu"]
    assert stage["status"] == "done" and stage["summary"]["subnets_total"] == 12
    model, meta = load_predictor(run, "cpu")
    assert meta["setup"]["clock"] == "cpu" and meta["space_name"] == "toy-chain"
    assert model.predict([toy_space.ToyChainSpace(resolutions=[8]).largest()])[0] > 0


def _measurements(path: Path, count: int, seed: int, scale: float, launch_ms: float) -> Path:
    """`count` toy subnets with latency `scale * MMACs + launch_ms * depth + 0.05` ms."""
    space = toy_space.ToyChainSpace()
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        arch = space.sample(rng)
        ms = 0.05 + scale * space.complexity(arch)["macs"] / 1e6 + launch_ms * arch["depth"]
        lines.append(json.dumps({"arch": arch, "latency_ms": ms}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_import_transfer_from_a_profiled_device(runs_dir: Path, tmp_path: Path) -> None:
    source = _measurements(tmp_path / "gpu.jsonl", 120, 0, 1.0, 0.0)
    assert runner.invoke(app, ["profile", "import", str(source), "--device", "gpu",
                               *TOY]).exit_code == 0
    target = _measurements(tmp_path / "phone.jsonl", 24, 1, 3.0, 0.02)
    result = runner.invoke(app, ["profile", "import", str(target), "--device", "phone",
                                 "--transfer-from", "gpu", *TOY, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["transfer_from"] == "gpu" and report["n_subnets"] >= 20  # distinct subnets
    assert report["predictors"]["transfer"]["holdout"]["within10"] > 0.9
    # imported: the report says whether more measurements are needed for the +-10 % goal
    assert report["needed"]["message"].startswith("80% within +-10%")
    assert report["needed"]["learning_curve"]["n_measured"] == report["n_subnets"]
    # a refit keeps the source; the transfer predictor predicts on its own after loading
    refit = runner.invoke(app, ["profile", "fit", "--device", "phone", *TOY, "--predictor",
                                "transfer", "--json"])
    assert refit.exit_code == 0, refit.output
    assert json.loads(refit.stdout)["transfer_from"] == "gpu"
    space = toy_space.ToyChainSpace()
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps(space.largest()) + "\n")
    predicted = runner.invoke(app, ["profile", "predict", str(queries), "--device", "phone",
                                    *TOY, "--json"])
    truth = 0.05 + 3.0 * space.complexity(space.largest())["macs"] / 1e6 + 0.02 * 3
    assert json.loads(predicted.stdout)[0]["latency_ms"] == pytest.approx(truth, rel=0.1)


@pytest.mark.parametrize("device,expected", [
    ("phone", "expected another device than 'phone'"),
    ("tpu", "no latency predictor for device 'tpu'"),
])
def test_transfer_from_needs_another_profiled_device(
    runs_dir: Path, tmp_path: Path, device: str, expected: str
) -> None:
    data = _measurements(tmp_path / "phone.jsonl", 24, 1, 3.0, 0.02)
    if device == "phone":
        assert runner.invoke(app, ["profile", "import", str(data), "--device", "phone",
                                   *TOY]).exit_code == 0
    result = runner.invoke(app, ["profile", "import", str(data), "--device", "phone",
                                 "--transfer-from", device, *TOY])
    assert result.exit_code == 2, result.output
    assert expected in _one_error_line(result.output)


@pytest.mark.slow
def test_bundle_with_a_source_holds_the_informative_subnets(
    runs_dir: Path, tmp_path: Path
) -> None:
    from nas.artifacts import read_json
    from predictors import load_predictor
    from predictors.informative import informative_subnets

    source = _measurements(tmp_path / "gpu.jsonl", 120, 0, 1.0, 0.0)
    assert runner.invoke(app, ["profile", "import", str(source), "--device", "gpu",
                               *TOY]).exit_code == 0
    out = tmp_path / "bundle"
    result = runner.invoke(app, ["profile", "bundle", "--out", str(out), "--samples", "5",
                                 "--no-blocks", "--transfer-from", "gpu", *TOY])
    assert result.exit_code == 0, result.output
    assert "--transfer-from gpu" in result.output
    space = toy_space.ToyChainSpace()
    model, _ = load_predictor(runs_dir / "_profiles" / "toy-chain-12px-gpu", "gpu", space=space)
    expected = informative_subnets(space, model, 5, seed=0)
    items = read_json(out / "bundle.json")["items"]
    assert [item["arch"] for item in items] == expected
    predicted = model.predict(expected)
    # spread over the source's range, from the fastest stretch to the slowest
    low, high = model.predict([space.smallest(), space.largest()])
    assert list(predicted) == sorted(predicted)
    assert np.log(predicted[-1] / predicted[0]) > 0.6 * np.log(high / low)
