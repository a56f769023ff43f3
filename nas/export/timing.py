"""Batch-1 latency of an exported model on this CPU, for the model card and the benchmark.

The profiler (`nas profile`) measures thousands of subnets for the predictors; here only one
model is timed, so a plain loop of warm-up runs then timed runs with the median reported is
enough. Figures depend on machine load, which the card says next to them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def time_calls(
    fn: Callable[[], Any], *, warmup: int = 10, repeats: int = 50, min_seconds: float = 0.0
) -> list[float]:
    """Wall times of `fn()` in milliseconds: `warmup` untimed calls, then at least `repeats`
    timed ones (more until `min_seconds` have passed)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start_all < min_seconds:
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summarize(times_ms: list[float]) -> dict[str, float]:
    """Median, p10, p90, mean and count of a list of milliseconds."""
    ordered = sorted(times_ms)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "median_ms": statistics.median(ordered),
        "p10_ms": quantile(0.1),
        "p90_ms": quantile(0.9),
        "mean_ms": statistics.fmean(ordered),
        "repeats": float(len(ordered)),
    }


def measure_module(
    model: Callable[[torch.Tensor], Any], example: torch.Tensor, *, warmup: int = 10,
    repeats: int = 50,
) -> dict[str, float]:
    """Latency summary of `model(example)` under `torch.no_grad()`."""

    def call() -> None:
        with torch.no_grad():
            model(example)

    return summarize(time_calls(call, warmup=warmup, repeats=repeats))
