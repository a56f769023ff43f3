from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from nas.errors import DeviceError, NasError
from nas.profile.devices import create_device
from nas.profile.measure import MeasureSettings, measure

FAST = MeasureSettings(warmup=2, warmup_ms=5, repeats=5, target_ms=30, max_repeats=50)


def _chain(depth: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, padding=1)]
    for _ in range(depth):
        layers += [nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("device_name", ["cpu", "onnxruntime"])
def test_measurement_is_monotone_in_model_size(device_name: str) -> None:
    device = create_device(device_name, threads=1)
    medians = []
    for depth in (0, 4, 16):
        timing = measure(device.prepare(_chain(depth), (1, 3, 24, 24)), FAST)
        assert timing.q1_ms <= timing.median_ms <= timing.q3_ms
        assert timing.n >= FAST.repeats
        medians.append(timing.median_ms)
    assert medians[0] < medians[1] < medians[2]


def test_outliers_are_remeasured() -> None:
    calls = {"n": 0}

    def runner(n: int) -> list[float]:
        out = []
        for _ in range(n):
            calls["n"] += 1
            out.append(100.0 if calls["n"] == 8 else 1.0 + 0.001 * (calls["n"] % 3))
        return out

    timing = measure(runner, MeasureSettings(warmup=2, warmup_ms=0, repeats=20, target_ms=0))
    assert timing.remeasured == 1
    assert timing.q3_ms < 1.01
    assert timing.median_ms == pytest.approx(1.001, abs=0.002)


def test_repeats_adapt_to_target_duration() -> None:
    timing = measure(lambda n: [2.0] * n, MeasureSettings(repeats=5, target_ms=100))
    assert timing.n == 50
    assert np.isclose(timing.rel_iqr, 0.0)


def test_unknown_and_unavailable_devices() -> None:
    with pytest.raises(NasError, match="unknown device 'tpu'"):
        create_device("tpu")
    with pytest.raises(DeviceError, match="providers"):
        create_device("onnxruntime:Nope")


def test_cpu_clock_needs_one_thread_and_counts_compute() -> None:
    with pytest.raises(NasError, match="--threads 1"):
        create_device("cpu", threads=2, clock="cpu")
    with pytest.raises(NasError, match="clock"):
        create_device("cpu", threads=1, clock="sundial")
    device = create_device("cpu", threads=1, clock="cpu")
    small = measure(device.prepare(_chain(0), (1, 3, 24, 24)), FAST)
    large = measure(device.prepare(_chain(8), (1, 3, 24, 24)), FAST)
    assert 0 < small.median_ms < large.median_ms
    assert device.fingerprint()["clock"] == "cpu"


def test_relative_timing_cancels_a_drifting_load() -> None:
    from nas.profile.measure import measure_relative

    clock = {"t": 0}

    def load() -> float:  # the machine slows down 3x over the measurement
        clock["t"] += 1
        return 1.0 + clock["t"] / 50

    def model(n: int) -> list[float]:
        return [4.0 * load() for _ in range(n)]

    def reference(n: int) -> list[float]:
        return [2.0 * load() for _ in range(n)]

    settings = MeasureSettings(warmup=2, warmup_ms=0, repeats=40, target_ms=0)
    raw = measure(model, settings)
    assert raw.q3_ms / raw.q1_ms > 1.2  # drift shows in plain timings
    relative = measure_relative(model, reference, 2.0, settings)
    assert relative.median_ms == pytest.approx(4.0, rel=0.03)
    assert relative.q3_ms / relative.q1_ms < 1.03
