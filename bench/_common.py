"""Helpers shared by the benchmark scripts: JSON-line output and robust timing."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
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
