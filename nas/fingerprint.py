"""What a latency measurement depends on besides the model: the machine and its libraries.

A fingerprint is recorded with every profile and predictor. Loading a predictor on a machine
whose fingerprint differs gives a warning: the predictor may still rank subnets well, but its
milliseconds belong to the other machine.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# fields that change latency; library patch versions and hostnames are recorded but not compared
COMPARED = ("cpu_model", "logical_cores", "machine", "gpu_name", "torch", "onnxruntime")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else `platform.processor()`."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def _gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return str(torch.cuda.get_device_name(index))


def fingerprint(device: str, *, threads: int | None = None) -> dict[str, Any]:
    """The facts of this machine that matter for latency measured on `device`."""
    return {
        "device": device,
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "threads": threads,
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "onnxruntime": _version("onnxruntime") if device.startswith("onnxruntime") else None,
        "gpu_name": _gpu_name(device),
    }


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable `field: recorded -> current` for compared fields that differ."""
    out = []
    for field in COMPARED:
        if field in recorded and recorded.get(field) != current.get(field):
            out.append(f"{field}: {recorded.get(field)!r} -> {current.get(field)!r}")
    return out


def mismatch_warning(recorded: dict[str, Any] | None) -> str | None:
    """A warning when `recorded` (a stored fingerprint) does not describe this machine.

    Remote devices (imported measurements) carry no fingerprint and never warn. Returns the
    text only (`predictors.load_predictor` logs it).
    """
    if not recorded or "cpu_model" not in recorded:
        return None
    current = fingerprint(str(recorded.get("device", "cpu")), threads=recorded.get("threads"))
    diffs = differences(recorded, current)
    if not diffs:
        return None
    return (
        "latency predictor was profiled on another machine or set-up ("
        + "; ".join(diffs)
        + "); its milliseconds may not hold here: re-run `nas profile` on this machine"
    )
