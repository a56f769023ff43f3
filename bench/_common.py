"""Helpers shared by the benchmark scripts: JSON-line output and robust timing."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    higher_is_better: bool = True,
    **extra: Any,
) -> None:
    """Print one benchmark figure as a JSON line; `ratio` > 1 always means we are better."""
    record: dict[str, Any] = {"name": name, "value": round(value, 6), "unit": unit}
    if baseline is not None:
        record["baseline"] = baseline
    if baseline_value is not None:
        record["baseline_value"] = round(baseline_value, 6)
        if baseline_value > 0 and value > 0:
            ratio = value / baseline_value if higher_is_better else baseline_value / value
            record["ratio"] = round(ratio, 3)
    record.update(extra)
    print(json.dumps(record), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def children_cpu_seconds() -> float:
    """CPU seconds of the finished child processes (the commands a bench ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_nas(args: list[str], env: dict[str, str] | None = None) -> str:
    """One `nas` command in a child process with one torch thread; its stderr (progress lines)
    passes through; a failure ends the bench with its exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAS_PROGRESS_SECONDS": "60", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "nas", *args], env=env, stdout=subprocess.PIPE, text=True,
        check=False, cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise SystemExit(f"nas {' '.join(args[:3])} ... failed with exit code {done.returncode}")
    return done.stdout
