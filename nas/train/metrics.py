"""A training's metrics log (metrics.jsonl): means over a window of steps, epoch records.

Every line carries the global step it was written at, so a resumed run drops the lines past
its checkpoint (they will be logged again) and a fresh start begins with an empty file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.artifact_kinds import TRAIN_METRICS
from nas.artifacts import append_jsonl, atomic_write_text, json_ready, read_jsonl
from nas.train.trainer import Ratio, StepOutput


@dataclass
class Window:
    """Sums of step metrics over one logging interval (or one epoch)."""

    steps: int = 0
    images: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, output: StepOutput) -> None:
        self.steps += 1
        self.images += output.images
        for key, value in output.metrics.items():
            if isinstance(value, Ratio):
                pair = self.ratios.setdefault(key, [0.0, 0.0])
                pair[0] += value.total
                pair[1] += value.count
            else:
                self.sums[key] = self.sums.get(key, 0.0) + value

    @property
    def seconds(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: value / self.steps for key, value in self.sums.items()}
        out.update({key: total / max(count, 1) for key, (total, count) in self.ratios.items()})
        out["images_per_s"] = self.images / self.seconds
        return out


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop the records logged after `step`: a resumed run logs those steps again."""
    if not path.exists():
        return
    kept = [r for r in read_jsonl(path, TRAIN_METRICS) if int(r.get("step", 0)) <= step]
    atomic_write_text(path, "".join(json.dumps(json_ready(r), sort_keys=True) + "\n"
                                    for r in kept))


class MetricsLog:
    """The JSONL file of one training; writes nothing when disabled (ranks other than 0)."""

    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled

    def prepare(self, resumed_at: int | None) -> None:
        """A fresh start keeps no old lines; a resume keeps those up to its checkpoint."""
        if not self.enabled:
            return
        if resumed_at is None:
            self.path.unlink(missing_ok=True)
        else:
            truncate_jsonl(self.path, resumed_at)

    def write(self, record: Mapping[str, Any]) -> None:
        if self.enabled:
            append_jsonl(self.path, record)
