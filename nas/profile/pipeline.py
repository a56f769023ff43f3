"""`nas profile` and its subcommands end to end, minus the printing.

`profile_device` measures a device (a session, recorded as the run's stage
`profile-<device>`) and fits its predictors; `import_profile`, `refit_predictors`,
`predict_latency` and `make_bundle` serve remote devices and users' own measurements. Each
works on a `ProfileTarget`: a run's space, or a space built from its name (no run).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import arch_id
from nas.artifact_kinds import PREDICTOR_REPORT
from nas.artifacts import RunDir, device_dirname, read_json
from nas.config import check_finite
from nas.errors import ConfigError
from nas.locks import stage_lock
from nas.profile.fit import (
    build_predictors,
    import_measurements,
    read_archs,
    read_measurements,
    training_data,
)
from nas.profile.session import ProfilePlan, ProgressCallback, Session
from nas.profile.store import REPORT, ProfileStore, open_target
from predictors.io import LatencyModel, load_predictor, predictor_warning
from search_spaces.base import SearchSpace


@dataclass(frozen=True)
class ProfileTarget:
    """Whose latency: a run's space (`run`), or a space built from `space`, its class count,
    image size and `space_options` (`KEY=VALUE` texts), kept in `RUNS_DIR/_profiles/`."""

    runs_dir: Path
    device: str
    run: str | None = None
    space: str | None = None
    num_classes: int | None = None
    image_size: int | None = None
    space_options: Sequence[str] = ()
    wait: bool = False  # queue behind another process writing this device's profile

    def open(self) -> tuple[SearchSpace, ProfileStore]:
        """The space and the device's store (see `nas.profile.store.open_target`)."""
        space, store = open_target(
            self.runs_dir, run=self.run, space=self.space, num_classes=self.num_classes,
            image_size=self.image_size, device=self.device, options=self.space_options,
        )
        return space, store

    def writing(self, store: ProfileStore) -> contextlib.AbstractContextManager[None]:
        """The lock of this device's profile and predictors (one writer at a time)."""
        return stage_lock(store.root, f"profile-{device_dirname(self.device)}", wait=self.wait,
                          hint="or profile another --device")

    def as_config(self) -> dict[str, Any]:
        """As recorded in the stage config (the names of the command's options)."""
        return {"run": self.run, "space": self.space, "num_classes": self.num_classes,
                "image_size": self.image_size, "device": self.device,
                "space_option": list(self.space_options)}


@dataclass(frozen=True)
class ProfileOptions:
    """How `nas profile` measures (see its --help for each option)."""

    samples: int = 300
    batch_size: int = 1
    threads: int = 1
    clock: str = "wall"
    budget_minutes: float | None = None
    measure_ms: float = 250.0
    reference: bool = True
    rounds: int = 3
    predictor: str = "auto"
    no_blocks: bool = False
    fresh: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        if (self.samples < 2 or self.batch_size < 1 or self.threads < 1
                or self.measure_ms <= 0 or self.rounds < 1):
            raise ConfigError(
                "expected --samples >= 2, --batch-size >= 1, --threads >= 1, --measure-ms > 0 "
                f"and --rounds >= 1, got {self.samples}, {self.batch_size}, {self.threads}, "
                f"{self.measure_ms}, {self.rounds}"
            )

    def plan(self) -> ProfilePlan:
        from nas.profile.measure import MeasureSettings

        budget_s = None if self.budget_minutes is None else 60 * self.budget_minutes
        return ProfilePlan(samples=self.samples, batch_size=self.batch_size,
                           blocks=not self.no_blocks, seed=self.seed, reference=self.reference,
                           rounds=self.rounds, budget_s=budget_s,
                           settings=MeasureSettings(target_ms=self.measure_ms))


@dataclass(frozen=True)
class Predictors:
    """A device's fitted predictors: the quality report, where they are, and a warning.

    Attributes:
        report: the quality report (`report.json`).
        root: the run folder or run-less profile folder holding `predictor/<device>/`.
        warning: why the chosen predictor should not be trusted blindly, or None.
        imported: (subnets, blocks) read by `import_profile`, else None.
    """

    report: dict[str, Any]
    root: Path
    warning: str | None
    imported: tuple[int, int] | None = None


def profile_device(
    target: ProfileTarget, options: ProfileOptions, *,
    on_progress: ProgressCallback | None = None, argv: list[str] | None = None,
) -> Predictors:
    """Measure subnets and blocks of `target` on its device, then fit and check predictors.

    With a run, the session is recorded as the stage `profile-<device>` (`argv`: the command
    line recorded, default `sys.argv`). Earlier measurements are resumed unless `fresh`.
    """
    space, store = target.open()
    with target.writing(store):
        return _profile_device(target, options, space, store, on_progress, argv)


def _profile_device(
    target: ProfileTarget, options: ProfileOptions, space: SearchSpace, store: ProfileStore,
    on_progress: ProgressCallback | None, argv: list[str] | None,
) -> Predictors:
    from nas.profile.devices import create_device
    from predictors.select import quick_within10

    device = create_device(target.device, threads=options.threads, clock=options.clock)
    if options.fresh:
        store.clear()
    resolutions = space.input_sizes()

    def estimate() -> float | None:
        archs, y, featurizer, table = training_data(space, store, resolutions)
        return quick_within10(featurizer.transform(archs), y, block_ms=table, seed=options.seed)

    stage = f"profile-{device_dirname(target.device)}"
    run = RunDir(target.runs_dir, target.run) if target.run else None
    if run is not None:
        run.begin_stage(stage, config={**target.as_config(), **dataclasses.asdict(options)},
                        seed=options.seed, device=target.device, argv=argv)
    session = Session(space, space.build_supernet(), device, store, options.plan(),
                      on_progress=on_progress, estimator=estimate)
    summary = session.run()
    report = build_predictors(
        space, store, resolutions=resolutions, seed=options.seed, force=_force(options.predictor),
        extra_meta={"fingerprint": device.fingerprint(), "setup": session.setup,
                    "session": summary},
    )
    if run is not None:
        holdout = (report["predictors"].get(report["chosen"]) or {}).get("holdout") or {}
        run.end_stage(stage, summary={"chosen": report["chosen"], **summary,
                                      "within10": holdout.get("within10"),
                                      "poor": holdout.get("poor")})
    return _predictors(report, store)


def import_profile(
    target: ProfileTarget, file: Path, *, predictor: str = "auto", replace: bool = False,
    seed: int = 0, transfer_from: str | None = None,
) -> Predictors:
    """Add measurements taken anywhere (`file`: JSONL of arch or block + `latency_ms`) to the
    device's store, then fit its predictors; `replace` drops earlier measurements first.

    `transfer_from` names a device profiled (or imported) before for the same space: its
    predictor is the prior of the `transfer` kind (few measurements suffice). The report says
    how many more measured subnets the +-10 % goal needs.
    """
    space, store = target.open()
    source = _source(target, space, transfer_from)
    measurements = read_measurements(file)  # a bad file fails before anything is written
    with target.writing(store):
        imported = import_measurements(space, store, file, replace=replace,
                                       measurements=measurements)
        report = build_predictors(
            space, store, resolutions=space.input_sizes(), seed=seed, force=_force(predictor),
            extra_meta={"fingerprint": None,
                        "setup": {"device": target.device, "imported_from": file.name}},
            source=source, needed=True,
        )
        return dataclasses.replace(_predictors(report, store), imported=imported)


def refit_predictors(
    target: ProfileTarget, *, predictor: str = "auto", seed: int = 0,
    transfer_from: str | None = None,
) -> Predictors:
    """Fit and check the predictors again from the stored measurements (no measuring).

    The source device of an earlier transfer is used again unless `transfer_from` names
    another; imported devices get the "measurements needed" entry again.
    """
    space, store = target.open()
    previous = store.predictor_dir / REPORT
    # keep the provenance of the measurements (fingerprint, set-up, session) from the last fit
    kept = read_json(previous, PREDICTOR_REPORT) if previous.is_file() else {}
    extra = {k: kept[k] for k in ("fingerprint", "setup", "session") if k in kept}
    source = _source(target, space, transfer_from or kept.get("transfer_from"))
    with target.writing(store):
        report = build_predictors(space, store, resolutions=space.input_sizes(), seed=seed,
                                  force=_force(predictor),
                                  extra_meta=extra or {"fingerprint": None},
                                  source=source, needed="needed" in kept)
        return _predictors(report, store)


def _source(
    target: ProfileTarget, space: SearchSpace, device: str | None
) -> tuple[str, LatencyModel] | None:
    """`(device, its chosen predictor)` for `--transfer-from`: the same run, or the run-less
    profile of the same space and options measured on that device."""
    if device is None:
        return None
    _, store = dataclasses.replace(target, device=device).open()
    model, _ = load_predictor(store.root, device, space=space, warn=False)
    return device, model


@dataclass(frozen=True)
class Prediction:
    """Predicted latency of subnets: one row per subnet (arch_id, arch, latency_ms, macs,
    params), the predictor kind used, and its warning."""

    rows: list[dict[str, Any]]
    kind: str
    warning: str | None


def predict_latency(target: ProfileTarget, file: Path, *, kind: str | None = None) -> Prediction:
    """Latency of each subnet of `file` (JSONL of configs) by the device's predictor, in order.

    Exact MACs and parameters come beside it, so users can constrain those too.
    """
    space, store = target.open()
    archs = read_archs(space, file)
    model, meta = load_predictor(store.root, target.device, kind=kind, space=space, warn=False)
    latency = model.predict(archs) if archs else np.zeros(0)
    rows: list[dict[str, Any]] = [
        {"arch_id": arch_id(a), "arch": a, "latency_ms": float(ms), **space.complexity(a)}
        for a, ms in zip(archs, latency, strict=True)
    ]
    return Prediction(rows, model.kind, predictor_warning(meta))


def make_bundle(
    target: ProfileTarget, out: Path, *, samples: int = 300, batch_size: int = 1,
    blocks: bool = True, seed: int = 0, on_item: Callable[[int, int], None] | None = None,
    transfer_from: str | None = None,
) -> dict[str, Any]:
    """ONNX models and a stand-alone runner for a remote device; returns the bundle manifest.

    With `transfer_from` (a device profiled before) the `samples` subnets are the most
    informative for a transfer from it (`predictors.informative`), not a stratified sample.
    """
    from nas.profile.bundle import write_bundle
    from predictors.informative import informative_subnets

    space, _ = target.open()
    source = _source(target, space, transfer_from)
    archs = None if source is None else informative_subnets(space, source[1], samples, seed=seed)
    return write_bundle(space, space.build_supernet(), out, samples=samples,
                        batch_size=batch_size, blocks=blocks, seed=seed, on_item=on_item,
                        archs=archs)


def _force(predictor: str) -> str | None:
    return None if predictor == "auto" else predictor


def _predictors(report: dict[str, Any], store: ProfileStore) -> Predictors:
    _, meta = load_predictor(store.root, store.device, warn=False)
    return Predictors(report, store.root, predictor_warning(meta))
