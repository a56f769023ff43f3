"""SIGINT / SIGTERM stop `nas train-supernet` with a checkpoint; `--resume` then continues it.

The command runs in a subprocess without a terminal, so this also checks the plain progress
lines that replace the bar under nohup, CI or Slurm.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.artifacts import RunDir

TRAIN_TESTS = Path(__file__).resolve().parents[1] / "nas" / "train"
DRIVER = f"""
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {str(TRAIN_TESTS)!r})
from train_toy import register
register()
from cli import main
sys.argv = ["nas", *sys.argv[1:]]
main()
"""
STEP = re.compile(r"\s(\d+)/(\d+)\s")


def _start(runs_dir: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["train-supernet", "--run", "r", "--runs-dir", str(runs_dir), "--space", "toy-train",
            "--dataset", "synthetic", "--image-size", "16", "--resolutions", "12,16",
            "--batch-size", "8", *extra]
    env = {**os.environ, "NAS_PROGRESS_SECONDS": "0", "WORLD_SIZE": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-c", DRIVER, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])


def _interrupt_after(process: subprocess.Popen[str], steps: int, signum: int) -> list[str]:
    """Read progress lines until step `steps`, send `signum`, return every line printed."""
    assert process.stdout is not None
    lines, deadline = [], time.monotonic() + 300
    for line in process.stdout:
        lines.append(line)
        found = STEP.search(line)
        if found and int(found.group(1)) >= steps:
            process.send_signal(signum)
            break
        assert time.monotonic() < deadline, "no progress line in time"
    out, err = process.communicate(timeout=300)
    return [*lines, *out.splitlines(), *err.splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_resume_continues(
    tmp_path: Path, signum: int, code: int
) -> None:
    process = _start(tmp_path, "--epochs", "10")
    printed = _interrupt_after(process, 5, signum)
    assert process.returncode == code, "\n".join(printed[-20:])
    run = RunDir(tmp_path, "r")
    assert (run.path / "supernet" / "checkpoint.pt").is_file()
    assert run.manifest()["stages"]["train-supernet"]["status"] == "interrupted"
    # no terminal: one plain line per step here (NAS_PROGRESS_SECONDS=0), no bar characters
    progress = [line for line in printed if STEP.search(line) and "elapsed" in line]
    assert progress and not any("━" in line for line in printed)
    if signum == signal.SIGINT:
        assert any("--resume" in line for line in printed)  # says how to continue

    resumed = _start(tmp_path, "--epochs", "10", "--resume", "--max-steps", "12")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    match = re.search(r"resumed from step (\d+) of (\d+)", out)
    assert match is not None, out[-2000:]
    assert int(match.group(1)) >= 5
    assert run.manifest()["stages"]["train-supernet"]["status"] == "done"
