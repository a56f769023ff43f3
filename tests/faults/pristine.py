"""One tiny run with every artifact kind, made once per test session through the CLI.

A NAS-Bench-201 supernet shrunk to C=4 and one cell per stage (registered as `SPACE`) on the
synthetic dataset: train-supernet (2 steps, so a checkpoint exists), profile this CPU (a few
subnets, short timings), search (budget 4) and export (pytorch format) take seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.fixtures.tiny_nb201 import register, write_truth

SPACE = register()
RUN = "r"
TAG = "s"
RANK_TAG = "k"
runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def rank_args(truth: Path) -> tuple[str, ...]:
    """`nas rank` of the run's ranking `k` against `truth` (`--run` left to the caller)."""
    return ("rank", "--truth", str(truth), "--samples", "4", "--bootstrap", "0",
            "--tag", RANK_TAG, "--json")


def build(runs: Path) -> Path:
    """`runs/r/` with a supernet, a profile of `cpu`, search `s`, one export and ranking `k`
    (against `truth.jsonl` beside the runs folder)."""
    quick = runs.parent / "quick.yaml"
    quick.write_text("bn_calibration_batches: 2\neval_batch_size: 64\n")
    common = ["--run", RUN, "--runs-dir", str(runs)]
    invoke("train-supernet", *common, "--space", SPACE, "--dataset", "synthetic",
           "--image-size", "16", "--resolutions", "16", "--batch-size", "8", "--epochs", "1",
           "--max-steps", "2", "--config", str(quick), "--quiet")
    invoke("profile", *common, "--device", "cpu", "--samples", "8", "--measure-ms", "2",
           "--rounds", "1", "--json")
    search_cfg = runs.parent / "search.json"
    search_cfg.write_text(json.dumps({"batch_size": 64}))
    invoke("search", *common, "--device", "cpu", "--tag", TAG, "--budget", "4",
           "--population", "4", "--config", str(search_cfg), "--json")
    invoke("export", *common, "--search", TAG, "--format", "pytorch", "--json")
    invoke(*rank_args(write_truth(runs.parent / "truth.jsonl", 8)), *common)
    return runs / RUN
