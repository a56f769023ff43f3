"""The whole pipeline on the digits dataset with small settings (`nas quickstart`).

train-supernet -> profile (this CPU) -> search under a latency budget -> export the best
subnet, each stage through the package function its command calls, so the run folder is
exactly what the individual commands would have made (the manifest records each stage with the
equivalent `nas` command line). Stages already done are skipped and interrupted ones resume
(training from its checkpoint, profiling from its measurements, search from its study), so
running it again is safe and cheap.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas.artifact_kinds import LATENCY_RECORD
from nas.artifacts import RunDir, atomic_write_json, read_jsonl
from nas.errors import ArtifactError
from nas.search.pipeline import SearchObserver

if TYPE_CHECKING:
    from nas.export.from_run import RunExport
    from nas.profile.pipeline import Predictors
    from nas.profile.session import Progress
    from nas.train.loop import StepLog
    from nas.train.supernet_run import TrainSummary

TAG = "quickstart"
DEVICE = "cpu"
STAGES = 4

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartSettings:
    """The small settings: a few minutes on a 2-core CPU (see the README).

    Digits are 8x8 images, so 12 px inputs lose nothing; a sandwich step of 32 images (3
    subnets) then takes ~1.2 s on a 2-core CPU shared with other jobs.
    """

    epochs: int = 3  # 3 x 45 steps of 32 digits: ~60-70% val top-1 for the largest subnet
    max_steps: int | None = None  # stop early (the lr schedule still spans all epochs)
    batch_size: int = 32
    num_random: int = 1  # subnets per step: largest, smallest and this many random ones
    image_size: int = 12
    resolutions: str = "8,12"
    # Enough for a "good" predictor: every block timed (the lookup table needs them all),
    # 40 subnets. Timing each model's CPU time (one thread) instead of the elapsed time keeps
    # the noise floor at ~100% within +-10% on a loaded 2-core machine (62% with the wall
    # clock), so short 40 ms measurements suffice and one round does.
    profile_samples: int = 40
    profile_minutes: float = 1.5
    profile_measure_ms: float = 40.0
    profile_clock: str = "cpu"
    search_budget: int = 24
    population: int = 8
    eval_batch_size: int = 64  # search: BN calibration uses 10 batches of this size


class QuickstartObserver:
    """What `run_quickstart` reports; every hook here does nothing.

    Lifecycle: for each stage, `stage(index, title, skipped=...)`; a stage that runs then
    reports through its own hooks (`train_step`* and `trained`; `profile_progress`* and
    `profiled`; the `search` observer; `exported`) and, except the export, ends with
    `stage_done(title, seconds)`.
    """

    search: SearchObserver = SearchObserver()

    def stage(self, index: int, title: str, *, skipped: bool) -> None:
        """Stage `index` of `STAGES` starts, or is `skipped` because it is done."""

    def stage_done(self, title: str, seconds: float) -> None:
        """A stage that ran finished after `seconds`."""

    def train_step(self, log: StepLog) -> None:
        """One training step."""

    def trained(self, run: RunDir, summary: TrainSummary) -> None:
        """The supernet is trained."""

    def profile_progress(self, event: Progress) -> None:
        """Profiling went one measurement further."""

    def profiled(self, fitted: Predictors) -> None:
        """The CPU's predictors are fitted."""

    def exported(self, export: RunExport) -> None:
        """The best subnet is exported."""


@dataclass(frozen=True)
class QuickstartResult:
    """The run, the exported subnet's folder, the latency budget searched under (ms)."""

    run: RunDir
    out_dir: Path
    budget: float


def run_quickstart(
    run: RunDir, *, seed: int = 0, settings: QuickstartSettings | None = None,
    observer: QuickstartObserver | None = None,
) -> QuickstartResult:
    """Train, profile this CPU, search under a latency budget and export, into `run`."""
    settings = settings or QuickstartSettings()
    observer = observer or QuickstartObserver()
    common = ["--run", run.name, "--runs-dir", str(run.root)]
    _train(run, settings, seed, common, observer)
    _profile(run, settings, seed, common, observer)
    budget = latency_budget(run)
    _search(run, settings, seed, budget, common, observer)
    return QuickstartResult(run, _export(run, observer), budget)


def latency_budget(run: RunDir) -> float:
    """A latency bound (ms) that about half of the profiled subnets meet: the median."""
    from nas.profile.store import ProfileStore

    records = list(read_jsonl(ProfileStore(run.path, DEVICE).latency_path, LATENCY_RECORD))
    values = [float(r["latency_ms"]) for r in records if "latency_ms" in r]
    if not values:
        raise ArtifactError(f"run '{run.name}' has no profile of '{DEVICE}' to set a budget from")
    return round(statistics.median(values), 3)


def _stage(
    observer: QuickstartObserver, index: int, title: str, done: bool, action: Callable[[], None]
) -> None:
    observer.stage(index, title, skipped=done)
    if done:
        return
    start = time.perf_counter()
    action()
    observer.stage_done(title, time.perf_counter() - start)


@contextlib.contextmanager
def _command_line(argv: list[str]) -> Iterator[None]:
    """`sys.argv` as the equivalent `nas` command, for stages that record `sys.argv`."""
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _train(
    run: RunDir, settings: QuickstartSettings, seed: int, common: list[str],
    observer: QuickstartObserver,
) -> None:
    from nas.config import build_config
    from nas.supernet.weights import weights_path
    from nas.train.checkpoint import checkpoint_path
    from nas.train.config import TrainConfig
    from nas.train.supernet_run import train_run

    values = {"dataset": "digits", "image_size": settings.image_size,
              "resolutions": settings.resolutions, "epochs": settings.epochs,
              "max_steps": settings.max_steps, "batch_size": settings.batch_size,
              "num_random": settings.num_random, "seed": seed}
    values = {key: value for key, value in values.items() if value is not None}
    resume = checkpoint_path(run).is_file()
    argv = ["nas", "train-supernet", *common,
            *(arg for key, value in values.items() for arg in (_flag(key), str(value))),
            *(["--resume"] if resume else [])]

    def train() -> None:
        cfg = build_config(TrainConfig, overrides=values)
        # train_run records sys.argv in the manifest; it takes no command line of its own
        with _command_line(argv):
            summary = train_run(cfg, run, resume=resume, on_step=observer.train_step)
        observer.trained(run, summary)

    _stage(observer, 1, "train a supernet", weights_path(run).is_file(), train)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _profile(
    run: RunDir, settings: QuickstartSettings, seed: int, common: list[str],
    observer: QuickstartObserver,
) -> None:
    from nas.profile.pipeline import ProfileOptions, ProfileTarget, profile_device

    options = ProfileOptions(samples=settings.profile_samples,
                             budget_minutes=settings.profile_minutes, threads=1, seed=seed,
                             clock=settings.profile_clock, rounds=1,
                             measure_ms=settings.profile_measure_ms)
    argv = ["nas", "profile", *common, "--device", DEVICE, "--samples",
            str(settings.profile_samples), "--budget-minutes", str(settings.profile_minutes),
            "--threads", "1", "--clock", settings.profile_clock, "--rounds", "1",
            "--measure-ms", str(settings.profile_measure_ms), "--seed", str(seed)]

    def profile() -> None:
        target = ProfileTarget(run.root, DEVICE, run=run.name)
        fitted = profile_device(target, options, on_progress=observer.profile_progress,
                                argv=argv)
        observer.profiled(fitted)

    profiled = (run.predictor_dir(DEVICE) / "selected.json").is_file()
    _stage(observer, 2, "profile this CPU", profiled, profile)


def _search(
    run: RunDir, settings: QuickstartSettings, seed: int, budget: float, common: list[str],
    observer: QuickstartObserver,
) -> None:
    from nas.search.pipeline import SearchTarget, run_searches
    from nas.search.problems import SearchConfig

    # `nas search` has no --batch-size flag: the rerunnable command passes it in a file
    config_file = run.sub("config", "quickstart-search.json")
    atomic_write_json(config_file, {"batch_size": settings.eval_batch_size})
    cfg = SearchConfig(latency_max=budget, budget=settings.search_budget,
                       population=settings.population, seed=seed,
                       batch_size=settings.eval_batch_size)
    argv = ["nas", "search", *common, "--device", DEVICE, "--tag", TAG, "--latency-max",
            str(budget), "--budget", str(settings.search_budget), "--population",
            str(settings.population), "--seed", str(seed), "--config", str(config_file)]
    target = SearchTarget(run.root, run=run.name, devices=[DEVICE], tag=TAG, argv=argv)

    def search() -> None:
        run_searches(cfg, target, observer=observer.search)

    done = (run.search_dir(TAG) / "pareto.json").is_file()
    _stage(observer, 3, f"search under {budget} ms on {DEVICE}", done, search)


def _pick_rule(run: RunDir) -> str:
    """`best`; or, when every front member was measured over the budget (a busy machine is
    slower than when it was profiled), the index of the fastest one measured, so the
    walk-through still ends with an export."""
    from nas.export.from_run import find_front

    front, _ = find_front(run, TAG)
    if front is None or any(front.meets_constraints(e) for e in front.entries):
        return "best"
    measured = [e for e in front.entries if e.measured_latency is not None]
    if not measured:
        return "best"  # nothing measured: `best` explains what is wrong
    fastest = min(measured, key=lambda e: (e.measured_latency or 0.0, e.index))
    logger.warning("every front member was measured over the latency budget on this machine; "
                   "exporting the fastest measured, front member %d (%.3f ms)",
                   fastest.index, fastest.measured_latency)
    return str(fastest.index)


def _export(run: RunDir, observer: QuickstartObserver) -> Path:
    """Stage 4: export the best subnet of the quickstart search (skipped when done)."""
    from nas.export.from_run import export_from_run

    stages = run.manifest().get("stages", {}) if run.exists() else {}
    stage = stages.get("export") or {}
    previous = Path(str((stage.get("summary") or {}).get("out_dir", "")))
    done = stage.get("status") == "done" and (previous / "metrics.json").is_file()
    observer.stage(4, "export the best subnet", skipped=done)
    if done:
        return previous
    rule = _pick_rule(run)
    argv = ["nas", "export", "--run", run.name, "--runs-dir", str(run.root), "--search", TAG,
            "--pick", rule]
    export = export_from_run(run, pick_rule=rule, search_tag=TAG, argv=argv)
    observer.exported(export)
    return export.report.out_dir
