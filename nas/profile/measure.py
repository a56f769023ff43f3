"""The measurement method: warm-up, adaptive repeats, median and IQR, outlier re-measurement.

Why this way: a single timing on a shared machine is at the mercy of the scheduler, so each
model is called enough times to fill a target duration, the median (robust to spikes) is kept
with its inter-quartile range, and timings far above the upper quartile (a context switch, a
page fault) are replaced by fresh ones instead of being averaged in.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.profile.devices import Runner


@dataclass(frozen=True)
class MeasureSettings:
    """How each model is timed.

    Attributes:
        warmup: minimum untimed calls before timing.
        warmup_ms: keep warming up until this much time was spent (caches, allocators, JIT).
        repeats: minimum timed calls.
        target_ms: timed calls are added until about this much time is covered.
        max_repeats: upper bound of timed calls.
        outlier_iqr: timings above `q3 + outlier_iqr * IQR` are re-measured.
        max_rounds: rounds of outlier re-measurement.
    """

    warmup: int = 3
    warmup_ms: float = 40.0
    repeats: int = 10
    target_ms: float = 250.0
    max_repeats: int = 200
    outlier_iqr: float = 3.0
    max_rounds: int = 2


@dataclass(frozen=True)
class Timing:
    """The result of timing one model (milliseconds)."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    n: int
    remeasured: int

    @property
    def rel_iqr(self) -> float:
        return (self.q3_ms - self.q1_ms) / max(self.median_ms, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _warm_up(runner: Runner, settings: MeasureSettings) -> float:
    """Untimed calls until both the count and the duration are reached; returns a call's ms."""
    start = time.perf_counter()
    calls: list[float] = []
    while len(calls) < settings.warmup or (time.perf_counter() - start) * 1e3 < settings.warmup_ms:
        calls.extend(runner(1))
        if len(calls) >= 10 * settings.warmup:
            break
    return float(np.median(calls[len(calls) // 2 :]))


def measure(runner: Runner, settings: MeasureSettings | None = None) -> Timing:
    """Time one prepared model: warm-up, repeats sized to `target_ms`, outliers re-measured."""
    settings = settings or MeasureSettings()
    per_call = _warm_up(runner, settings)
    wanted = int(settings.target_ms / max(per_call, 1e-6))
    repeats = min(settings.max_repeats, max(settings.repeats, wanted))
    timings = np.asarray(runner(repeats), dtype=np.float64)
    remeasured = 0
    for _ in range(settings.max_rounds):
        q1, q3 = np.percentile(timings, [25, 75])
        # a floor on the IQR: perfectly steady timings would otherwise flag every tiny wobble
        spread = max(q3 - q1, 0.01 * float(np.median(timings)))
        outliers = np.flatnonzero(timings > q3 + settings.outlier_iqr * spread)
        if outliers.size == 0:
            break
        timings[outliers] = runner(int(outliers.size))
        remeasured += int(outliers.size)
    q1, median, q3 = np.percentile(timings, [25, 50, 75])
    return Timing(float(median), float(q1), float(q3), int(timings.size), remeasured)


def measure_relative(
    runner: Runner, reference: Runner, scale_ms: float, settings: MeasureSettings | None = None
) -> Timing:
    """Time a model against a reference model, call by call, in the reference's units.

    On a machine shared with other work the speed of every model drifts with the load, by
    tens of percent over minutes. Calls of the model and of a fixed reference model alternate,
    so each pair sees the same load; the median of the per-pair ratios, times `scale_ms` (the
    reference's own latency, measured once), is far steadier than raw timings.
    """
    settings = settings or MeasureSettings()
    # the duration target covers both calls of a pair: a 1 ms block paired with a 15 ms
    # reference must not be called 250 times
    per_call = _warm_up(runner, settings) + _warm_up(reference, settings)

    def pairs(n: int) -> list[float]:
        out = []
        for _ in range(n):
            own = runner(1)[0]
            out.append(own / max(reference(1)[0], 1e-9))
        return out

    wanted = int(settings.target_ms / max(per_call, 1e-6))
    ratios = np.asarray(pairs(min(settings.max_repeats, max(settings.repeats, wanted))))
    remeasured = 0
    for _ in range(settings.max_rounds):
        q1, q3 = np.percentile(ratios, [25, 75])
        spread = max(q3 - q1, 0.01 * float(np.median(ratios)))
        outliers = np.flatnonzero((ratios > q3 + settings.outlier_iqr * spread)
                                  | (ratios < q1 - settings.outlier_iqr * spread))
        if outliers.size == 0:
            break
        ratios[outliers] = pairs(int(outliers.size))
        remeasured += int(outliers.size)
    q1, median, q3 = np.percentile(ratios * scale_ms, [25, 50, 75])
    return Timing(float(median), float(q1), float(q3), int(ratios.size), remeasured)
