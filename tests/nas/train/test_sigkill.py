"""A run killed with SIGKILL mid-training and resumed ends with the uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
DRIVER = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {here!r})
from conftest import toy_config
from train_toy import register
from nas.artifacts import RunDir
from nas.train.supernet_run import train_run
register()
cfg = toy_config(epochs=4, batch_size=16, checkpoint_every=3, log_every=1)
train_run(cfg, RunDir({root!r}, sys.argv[1]), resume=sys.argv[2] == "1", evaluate=False)
"""


def _start(root: Path, name: str, resume: bool) -> subprocess.Popen[bytes]:
    code = DRIVER.format(here=str(HERE), root=str(root))
    env = {**os.environ, "WORLD_SIZE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, name, "1" if resume else "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-2000:]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    straight = _start(tmp_path, "straight", resume=False)
    _finish(straight)

    victim = _start(tmp_path, "killed", resume=False)
    metrics = tmp_path / "killed" / "supernet" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    # kill somewhere after the 2nd checkpoint, between checkpoints
    while time.monotonic() < deadline and victim.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 7:
            break
        time.sleep(0.01)
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "supernet" / "weights.safetensors").exists()

    _finish(_start(tmp_path, "killed", resume=True))
    a = load_file(str(tmp_path / "straight" / "supernet" / "weights.safetensors"))
    b = load_file(str(tmp_path / "killed" / "supernet" / "weights.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
