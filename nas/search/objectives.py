"""The metrics `nas search` optimises and constrains, built from a run's artifacts.

- `top1` (%, maximised): the subnet's accuracy on the run's validation split with the trained
  supernet's weights after BN recalibration (`nas.supernet.TrainedSupernet`); expensive.
- `latency_ms` (minimised): the device's latency predictor from `nas profile`; cheap.
- `macs`, `params`: exact counts from `space.complexity`; cheap.

Torch, datasets and predictors are imported lazily, so oracle searches never load them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.artifacts import RunDir
from nas.errors import ConfigError
from nas.search.base import Direction, Objective
from search_spaces.base import SearchSpace

if TYPE_CHECKING:
    from nas.supernet import Supernet, TrainedSupernet

logger = logging.getLogger(__name__)

ACCURACY_NAMES = ("top1", "accuracy", "acc", "val_top1", "test_top1")
ALIASES = {"latency": "latency_ms", "accuracy": "top1", "acc": "top1"}


def parse_objectives(text: str, *, aliases: bool = True) -> list[tuple[str, Direction]]:
    """`"top1,latency"` -> `[("top1", "maximize"), ("latency_ms", "minimize")]`.

    Accuracy-like names are maximised and everything else minimised, unless a name ends in
    `:max` or `:min`. With `aliases`, `latency` means `latency_ms` and `accuracy` means `top1`.
    """
    parsed: list[tuple[str, Direction]] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        name, _, sense = raw.partition(":")
        name = ALIASES.get(name, name) if aliases else name
        if sense not in ("", "max", "min"):
            raise ConfigError(f"--objectives: expected NAME or NAME:max|min, got '{raw}'")
        maximise = sense == "max" or (sense == "" and name in ACCURACY_NAMES)
        parsed.append((name, "maximize" if maximise else "minimize"))
    names = [n for n, _ in parsed]
    if not parsed or len(set(names)) != len(names):
        raise ConfigError(f"--objectives: expected distinct comma-separated names, got '{text}'")
    return parsed


def complexity_metrics(space: SearchSpace) -> dict[str, Objective]:
    """Exact `macs` and `params` (counts, minimised, cheap); one `complexity()` call per arch."""
    memo: dict[str, dict[str, int]] = {}

    def column(key: str) -> Any:
        def evaluate(archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
            from nas.arch import canonical_json

            values = []
            for arch in archs:
                text = canonical_json(arch)
                if text not in memo:
                    memo[text] = space.complexity(arch)
                values.append(memo[text][key])
            return np.asarray(values, dtype=np.float64)

        return evaluate

    return {
        "macs": Objective("macs", "minimize", column("macs"), cheap=True, unit="MACs"),
        "params": Objective("params", "minimize", column("params"), cheap=True, unit="count"),
    }


@dataclass
class LatencySource:
    """A device's latency predictor, as an objective, with what is known of its provenance."""

    objective: Objective
    meta: dict[str, Any]
    warning: str | None

    @property
    def local(self) -> bool:
        """Whether it was profiled on this very machine and set-up (then measurable here)."""
        from nas.fingerprint import mismatch_warning

        recorded = self.meta.get("fingerprint")
        if not isinstance(recorded, dict) or "cpu_model" not in recorded:
            return False  # imported or remote measurements: nothing to compare with
        return mismatch_warning(recorded) is None


def predictor_latency(run: RunDir, device: str, space: SearchSpace) -> LatencySource:
    """`latency_ms` from `device`'s latency predictor in `run` (see `nas profile`)."""
    from predictors.io import load_predictor, predictor_warning

    # not logged here: the search's observer shows `LatencySource.warning` once
    model, meta = load_predictor(run, device, space=space, warn=False)

    def evaluate(archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.asarray(model.predict(archs), dtype=np.float64)

    objective = Objective("latency_ms", "minimize", evaluate, cheap=True, unit="ms")
    return LatencySource(objective, meta, predictor_warning(meta))


@dataclass
class SupernetAccuracy:
    """`top1` of subnets of a run's trained supernet, after BN recalibration."""

    trained: TrainedSupernet
    split: str = "val"
    batch_size: int = 256

    @property
    def supernet(self) -> Supernet:
        return self.trained.net

    @classmethod
    def load(
        cls, run: RunDir, *, device: str, split: str, batch_size: int,
        calibration_batches: int | None = None,
    ) -> SupernetAccuracy:
        """`calibration_batches`: BN recalibration batches (None: the run's own setting)."""
        from nas.runtime import resolve_device
        from nas.supernet.trained import TrainedSupernet

        trained = TrainedSupernet.load(run, resolve_device(device))
        if calibration_batches is not None:
            trained = trained.with_calibration(calibration_batches)
        _ = trained.splits  # a missing dataset fails here, before the search starts
        return cls(trained, split, batch_size)

    def evaluate(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        evaluate = self.trained.evaluate
        scores = [evaluate(a, split=self.split, batch_size=self.batch_size)["top1"] for a in archs]
        return np.asarray(scores, dtype=np.float64)

    def objective(self) -> Objective:
        return Objective("top1", "maximize", self.evaluate, cheap=False, unit="%")


def run_space(run: RunDir) -> SearchSpace:
    """The run's search space, from its manifest (else from its supernet weights)."""
    from search_spaces import space_from_spec

    spec = run.manifest().get("space")
    if not spec:
        from nas.supernet.weights import read_weights_metadata, weights_path

        spec = read_weights_metadata(weights_path(run))["space"]
    return space_from_spec(spec, source=str(run.manifest_path))


def measure_latency(
    supernet: Supernet, archs: Sequence[Mapping[str, Any]], *, device: str, meta: dict[str, Any]
) -> dict[str, float]:
    """Median measured latency (ms) of each arch's extracted subnet on `device`, by arch_id.

    Uses the profiler's device runners and measurement method with the batch size, threads and
    clock the predictor was profiled with, so predicted and measured numbers are comparable.
    """
    from nas.arch import arch_id
    from nas.profile.devices import TimingSetup
    from nas.profile.measure import MeasureSettings, measure

    setup = meta.get("setup") or {}
    runner_device = TimingSetup.of(setup).device(device)
    batch = int(setup.get("batch_size", 1))
    channels = int(supernet.space.in_channels)
    settings = MeasureSettings(target_ms=150.0)
    measured = {}
    for arch in archs:
        side = supernet.input_resolution(arch) or int(supernet.space.image_size)
        model = supernet.extract_subnet(arch).eval()
        timing = measure(runner_device.prepare(model, (batch, channels, side, side)), settings)
        measured[arch_id(arch)] = timing.median_ms
    return measured
