"""`nas train-supernet` and `nas eval` from the command line, on a toy space and tiny data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nas" / "train"))
from train_toy import NAME, register  # noqa: E402

from cli import app  # noqa: E402
from nas.artifacts import RunDir  # noqa: E402
from tests.fixtures.cli_errors import one_error_line  # noqa: E402

register()
runner = CliRunner()
TINY = [
    "--space", NAME, "--dataset", "synthetic", "--image-size", "16", "--resolutions", "12,16",
    "--batch-size", "32", "--epochs", "1", "--quiet",
]


def _train(*extra: str):
    return runner.invoke(app, ["train-supernet", *TINY, *extra])


def test_train_then_eval(runs_dir: Path) -> None:
    result = _train("--run", "t", "--max-steps", "3", "--checkpoint-every", "2")
    assert result.exit_code == 0, result.output
    run = RunDir(runs_dir, "t")
    for name in ("weights.safetensors", "checkpoint.pt", "metrics.jsonl", "space.json"):
        assert (run.path / "supernet" / name).is_file(), name
    stage = run.manifest()["stages"]["train-supernet"]
    assert stage["status"] == "done" and stage["summary"]["steps"] == 3
    assert set(stage["summary"]["val"]) == {"largest", "smallest"}
    assert 0.0 <= stage["summary"]["val"]["largest"]["top1"] <= 100.0
    assert run.manifest()["space"]["name"] == NAME
    evaluated = runner.invoke(app, ["eval", "--run", "t", "--subnet", "min", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads(evaluated.output)
    assert record["split"] == "val" and record["n"] > 0
    assert record["arch"]["width"] == 4 and record["macs"] > 0
    inline = runner.invoke(app, ["eval", "--run", "t", "--subnet", '{"depth": 1, "width": 8, '
                                 '"kernel_size": 5, "resolution": 12}', "--split", "test"])
    assert inline.exit_code == 0 and "top-1" in inline.output


def test_resume_continues_a_stopped_run(runs_dir: Path) -> None:
    assert _train("--run", "r", "--max-steps", "2").exit_code == 0
    resumed = _train("--run", "r", "--max-steps", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    summary = RunDir(runs_dir, "r").manifest()["stages"]["train-supernet"]["summary"]
    assert summary["steps"] == 4
    # without repeating the options: the run's saved ones are used (not the defaults)
    short = runner.invoke(app, ["train-supernet", "--run", "r", "--resume", "--max-steps", "5",
                                "--quiet"])
    assert short.exit_code == 0, short.output
    resolved = json.loads((runs_dir / "r" / "config" / "train-supernet.json").read_text())
    assert resolved["space"] == NAME and resolved["batch_size"] == 32
    assert resolved["max_steps"] == 5


def test_a_torchrun_restart_continues_from_the_checkpoint(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torchrun --max-restarts relaunches the command line as it was, without --resume
    assert _train("--run", "e", "--max-steps", "2", "--checkpoint-every", "1").exit_code == 0
    again = _train("--run", "e", "--max-steps", "4", "--checkpoint-every", "1")
    assert again.exit_code == 2 and "pass --resume" in again.output
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    restarted = _train("--run", "e", "--max-steps", "4", "--checkpoint-every", "1")
    assert restarted.exit_code == 0, restarted.output
    run = RunDir(runs_dir, "e")
    assert run.manifest()["stages"]["train-supernet"]["summary"]["steps"] == 4
    lines = (run.path / "supernet" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]  # log_every 2 (toy)
    # a worker that died before the first checkpoint: the restart starts afresh
    fresh = _train("--run", "f", "--max-steps", "1")
    assert fresh.exit_code == 0, fresh.output


def test_config_file_and_flags_merge(runs_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("lr: 0.01\nweight_decay: 0.001\nmax_steps: 1\nbn_calibration_batches: 1\n")
    result = _train("--run", "c", "--config", str(config), "--lr", "0.02")
    assert result.exit_code == 0, result.output
    resolved = json.loads((runs_dir / "c" / "config" / "train-supernet.json").read_text())
    assert resolved["lr"] == 0.02  # typed flag beats the file
    assert resolved["weight_decay"] == 0.001 and resolved["bn_calibration_batches"] == 1  # file
    assert resolved["batch_size"] == 32 and resolved["momentum"] == 0.9  # flag, default


def test_error_paths_are_one_line(runs_dir: Path, tmp_path: Path) -> None:
    assert "CUDA is not available" in one_error_line(_train("--run", "x", "--device", "cuda"))
    assert "no checkpoint" in one_error_line(_train("--run", "x", "--resume"))
    assert _train("--run", "done", "--max-steps", "1").exit_code == 0
    assert "pass --resume" in one_error_line(_train("--run", "done", "--max-steps", "1"))
    line = one_error_line(_train("--run", "done", "--resume", "--method", "ps"))
    assert "option 'method'" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text("epoch: 3\n")
    assert "unknown option 'epoch'" in one_error_line(_train("--run", "y", "--config", str(bad)))
    assert "method" in one_error_line(_train("--run", "y", "--method", "bogus"))
    assert "not found" in one_error_line(runner.invoke(app, ["eval", "--run", "nope"]))
    bad_arch = runner.invoke(app, ["eval", "--run", "done", "--subnet", '{"width": 3}'])
    assert "expected one of" in one_error_line(bad_arch)


@pytest.mark.skipif(sys.platform != "linux", reason="darts dispatch only checks the message")
def test_darts_space_dispatches_to_bilevel(runs_dir: Path) -> None:
    from nas.train.registry import family_of

    assert family_of("darts") == "darts" and family_of("ofa-mbv3") != "darts"


def test_progress_display_renders_a_step() -> None:
    from io import StringIO

    from rich.console import Console

    from nas.commands import _progress as train_cmd
    from nas.train.loop import StepLog

    buffer = StringIO()
    original = train_cmd.console
    train_cmd.console = Console(file=buffer, force_terminal=True, width=160)
    try:
        with train_cmd.TrainProgress(True) as progress:
            progress.update(StepLog("sandwich", 0, 1, 2, 5, 10, 1.25, 0.5, None, 321.0, 0.1))
    finally:
        train_cmd.console = original
    text = buffer.getvalue()
    assert "sandwich" in text and "5/10" in text and "50%/-" in text and "321 img/s" in text
