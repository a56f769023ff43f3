"""`nas train-supernet` under the `torchrun` command: two CPU processes (gloo), a real space.

One uninterrupted job is the reference. A second job is killed twice (SIGKILL of one worker,
then SIGTERM to torchrun's process group) and resumed each time with `--resume` alone; it must
end with the reference's weights, bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nas.testing.torchrun import (
    kill_worker,
    rank_output,
    torchrun_command,
    torchrun_path,
    worker_env,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(torchrun_path() is None, reason="torchrun is not installed"),
]
STEPS = 12
# ofa-mbv3 has dropout, so the exact resume also checks that each rank got its own RNG back
TINY = ["--space", "ofa-mbv3", "--method", "spos", "--dataset", "synthetic", "--image-size", "16",
        "--resolutions", "16", "--batch-size", "16", "--epochs", "1", "--max-steps", str(STEPS),
        "--checkpoint-every", "3"]
SETTINGS = "log_every: 1\nbn_calibration_batches: 1\neval_batch_size: 64\n"


def _console_script() -> str:
    beside = Path(sys.executable).with_name("nas")
    return str(beside) if beside.is_file() else str(shutil.which("nas"))


def _start(root: Path, program: list[str], *args: str, logs: str) -> subprocess.Popen[str]:
    command = torchrun_command(*program, "--", "train-supernet", "--runs-dir", str(root / "runs"),
                               *args, log_dir=root / logs)
    # a session of its own: the test signals torchrun's process group, as a scheduler would
    return subprocess.Popen(command, env=worker_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(job: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = job.communicate(timeout=600)
    return subprocess.CompletedProcess(job.args, job.returncode, out, err)


def _assert_reference_weights(root: Path, run: str) -> None:
    expected = load_file(str(root / "runs" / "ref" / "supernet" / "weights.safetensors"))
    got = load_file(str(root / "runs" / run / "supernet" / "weights.safetensors"))
    assert expected.keys() == got.keys()
    different = [key for key in expected if not (expected[key] == got[key]).all()]
    assert different == []


def _logged_steps(root: Path, run: str) -> list[int]:
    path = root / "runs" / run / "supernet" / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("}")]


def _wait_for_step(root: Path, run: str, step: int, job: subprocess.Popen[str]) -> None:
    """Until step `step` is logged (so the checkpoint of the step before it is on disk)."""
    deadline = time.monotonic() + 300
    while max(_logged_steps(root, run), default=0) < step:
        assert job.poll() is None, _finish(job).stderr[-3000:]
        assert time.monotonic() < deadline, "no training progress"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted two-process job through `torchrun -m nas`."""
    root = tmp_path_factory.mktemp("torchrun")
    (root / "settings.yaml").write_text(SETTINGS)
    job = _start(root, ["-m", "nas"], "--run", "ref", *TINY, "--config",
                 str(root / "settings.yaml"), logs="logs-ref")
    done = _finish(job)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_two_processes_train_and_only_rank_0_speaks(reference: Path) -> None:
    assert rank_output(reference / "logs-ref", rank=1) == ("", "")  # not even a warning
    out, err = rank_output(reference / "logs-ref", rank=0)
    assert "supernet 'ref'" in out and "weights:" in out and err == ""
    run = reference / "runs" / "ref"
    stage = json.loads((run / "manifest.json").read_text())["stages"]["train-supernet"]
    assert stage["status"] == "done" and stage["summary"]["steps"] == STEPS
    assert set(stage["summary"]["val"]) == {"largest", "smallest"}
    metrics = [json.loads(line) for line in (run / "supernet" / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    assert all(m["world_size"] == 2 for m in metrics)


def test_a_killed_job_resumes_to_the_uninterrupted_weights(reference: Path) -> None:
    root = reference
    # the console script this time: torchrun runs `$(which nas)` as a Python script
    job = _start(root, [_console_script()], "--run", "k", *TINY, "--config",
                 str(root / "settings.yaml"), logs="logs-k1")
    _wait_for_step(root, "k", 4, job)  # past the checkpoint of step 3
    kill_worker(job.pid, rank=1)  # a crash, or the OOM killer
    assert _finish(job).returncode != 0
    assert not (root / "runs" / "k" / "supernet" / "weights.safetensors").exists()

    # --resume alone: the run's saved options; then SIGTERM to torchrun's process group
    job = _start(root, ["-m", "nas"], "--run", "k", "--resume", logs="logs-k2")
    _wait_for_step(root, "k", 7, job)  # past the checkpoint of step 6
    os.killpg(job.pid, signal.SIGTERM)
    assert _finish(job).returncode != 0

    done = _finish(_start(root, ["-m", "nas"], "--run", "k", "--resume", logs="logs-k3"))
    assert done.returncode == 0, done.stderr[-3000:]
    # the log was cut back to each checkpoint: every step once
    assert _logged_steps(root, "k") == list(range(1, STEPS + 1))
    _assert_reference_weights(root, "k")


def test_bad_input_fails_every_rank_in_one_line(tmp_path: Path) -> None:
    job = _start(tmp_path, ["-m", "nas"], "--run", "odd", *TINY, "--batch-size", "15",
                 logs="logs")
    done = _finish(job)
    assert done.returncode != 0
    # torchrun's failure report: each rank's exit code. Both ranks fail at the same check;
    # one that exits first makes torchrun SIGTERM the other, which on a loaded machine may
    # not have exited yet: that rank counts as failed with the others, not as a hang
    codes = dict(re.findall(r"rank\s+: (\d+) \(local_rank.*\n.*exitcode\s+: (-?\d+)\b",
                            done.stderr))
    assert sorted(codes) == ["0", "1"], done.stderr[-3000:]
    assert "2" in codes.values() and set(codes.values()) <= {"2", "-15"}, codes
    for rank in (0, 1):
        out, err = rank_output(tmp_path / "logs", rank=rank)
        if codes[str(rank)] != "2":
            continue
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert "batch_size: expected a multiple of the number of processes (2)" in err
