"""`nas search` end to end: problems per device, each device's search with its stage record,
its files in `runs/NAME/search/TAG/`, and the front timed here when the device is this machine.

The command only parses options and renders what a `SearchObserver` is told; scripts and
`nas quickstart` call `run_searches` directly.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.artifacts import RunDir
from nas.config import config_to_dict
from nas.errors import ConfigError
from nas.search import objectives as metrics
from nas.search.base import Candidate
from nas.search.optimize import SearchResult, run_search
from nas.search.oracle import Oracle
from nas.search.output import flat, plot_front, plot_hypervolume, write_front, write_trials
from nas.search.problems import (
    LATENCY,
    Problem,
    SearchConfig,
    accuracy_screen,
    oracle_problems,
    supernet_problems,
)
from nas.search.searchers import SEARCHERS
from search_spaces.base import SearchSpace


@dataclass(frozen=True)
class SearchTarget:
    """What to search: a run's supernet for its profiled devices, or an oracle table.

    Attributes:
        runs_dir: the runs folder.
        run: the run (optional with `oracle`: default `oracle-<space>`).
        devices: profiled devices, one front each (with `oracle`: latency columns).
        tag: the search's name (default: the device); `<tag>-<device>` with several devices.
        oracle: a JSONL table of metrics per subnet, searched instead of a supernet.
        space: the search space of the `oracle` table.
        argv: the command line recorded in the manifest (default: `sys.argv`).
    """

    runs_dir: Path
    run: str | None = None
    devices: Sequence[str] = ()
    tag: str | None = None
    oracle: Path | None = None
    space: str | None = None
    argv: list[str] | None = None


class SearchObserver:
    """What `run_searches` reports while it runs; every hook here does nothing.

    Lifecycle: `warning(text)` once per device whose latency predictor should not be trusted
    blindly, before any search; then, per device, `started(tag, algorithm, budget)`,
    `scored(candidate)` as soon as each new subnet is scored, `used(candidate, fresh)` for each
    subnet the search uses (`fresh`: scored now, not read from the study; a batch is used once
    all of it is scored), `stopped()` (always, also when the search fails), and `finished(search)`
    once the device's files are written.
    """

    def warning(self, text: str) -> None:
        """A device's predictor is poor or was profiled on another machine."""

    def started(self, tag: str, algorithm: str, budget: int) -> None:
        """A device's search starts; at most `budget` distinct subnets will be used."""

    def scored(self, candidate: Candidate) -> None:
        """One more subnet was newly scored (per-evaluation progress)."""

    def used(self, candidate: Candidate, fresh: bool) -> None:
        """The search used one more subnet."""

    def stopped(self) -> None:
        """The device's search ended (done or failed)."""

    def finished(self, search: DeviceSearch) -> None:
        """The device's front, files and measurements are ready."""


@dataclass(frozen=True)
class DeviceSearch:
    """One device's finished search.

    Attributes:
        run: the run folder's name.
        tag: the search's name; its files are in `out`.
        algorithm: the searcher used.
        problem: objectives and constraints.
        result: history, front and counts of the search.
        out: `runs/NAME/search/TAG/`.
        measured: latency (ms) of front members timed on this machine, by arch_id.
        note: why the front was not timed here although it could have been, or None.
    """

    run: str
    tag: str
    algorithm: str
    problem: Problem
    result: SearchResult
    out: Path
    measured: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    @property
    def plotted(self) -> bool:
        """Whether `pareto.png` was drawn (two objectives or more)."""
        return len(self.problem.objectives) >= 2

    def rows(self) -> list[dict[str, Any]]:
        """The front as flat objects (`--json`), with device and measured latency if any."""
        device = {"device": self.problem.device} if self.problem.device else {}
        return [
            flat(
                c,
                **device,
                **({"measured_latency_ms": self.measured[c.arch_id]}
                   if c.arch_id in self.measured else {}),
            )
            for c in self.result.front
        ]

    def summary(self) -> dict[str, Any]:
        """What the manifest records of the search stage."""
        result = self.result
        return {
            "front": len(result.front),
            "scored": len(result.history),
            "new_evaluations": result.new_evaluations,
            "rejected": result.rejected,
            "screened": result.screened,
            "seconds": round(result.seconds, 3),
        }

    def prediction_error(self) -> tuple[float, float] | None:
        """Median and largest relative error of predicted vs. measured front latency."""
        errors = [
            abs(c.values[LATENCY] - self.measured[c.arch_id]) / self.measured[c.arch_id]
            for c in self.result.front
            if LATENCY in c.values and self.measured.get(c.arch_id)
        ]
        return (statistics.median(errors), max(errors)) if errors else None


def run_searches(
    cfg: SearchConfig, target: SearchTarget, *, observer: SearchObserver | None = None
) -> list[DeviceSearch]:
    """Search every device of `target` with `cfg`; returns the searches in device order."""
    observer = observer or SearchObserver()
    import nas.search  # noqa: F401  (registers the built-in searchers)

    if cfg.algorithm is not None:
        SEARCHERS.get(cfg.algorithm)  # unknown names fail here with the valid list
    devices = list(dict.fromkeys(target.devices))
    if target.oracle is not None:
        run, space, problems = _oracle_setup(cfg, target, devices)
        accuracy = None
    else:
        if target.run is None or not devices:
            raise ConfigError(
                "expected --run NAME and --device D (or --oracle FILE --space SPACE)"
            )
        run = RunDir(target.runs_dir, target.run).require()
        space = metrics.run_space(run)
        problems, accuracy = supernet_problems(cfg, run, space, devices)
        for problem in problems:
            if problem.latency is not None and problem.latency.warning:
                observer.warning(problem.latency.warning)
    header = {"space": space.spec(), "run": run.name}
    searches = []
    for problem in problems:
        base = target.tag or problem.device or "oracle"
        tag = f"{target.tag}-{problem.device}" if target.tag and len(problems) > 1 else base
        search = _search_device(
            cfg, run, tag, problem, space, accuracy, header, observer, target.argv
        )
        observer.finished(search)
        searches.append(search)
    return searches


def _oracle_setup(
    cfg: SearchConfig, target: SearchTarget, devices: list[str]
) -> tuple[RunDir, SearchSpace, list[Problem]]:
    from search_spaces import create_space

    if target.space is None or target.oracle is None:
        raise ConfigError("--oracle: expected --space SPACE naming the table's search space")
    space = create_space(target.space)
    table = Oracle.load(target.oracle, space, skip_missing=cfg.skip_missing)
    run = RunDir(target.runs_dir, target.run or f"oracle-{target.space}")
    if not run.exists():
        run.update_manifest(space=space.spec())
    return run, space, oracle_problems(cfg, table, space, devices)


def _search_device(
    cfg: SearchConfig,
    run: RunDir,
    tag: str,
    problem: Problem,
    space: SearchSpace,
    accuracy: Any,
    header: dict[str, Any],
    observer: SearchObserver,
    argv: list[str] | None,
) -> DeviceSearch:
    """One device's search as the stage `search-<tag>`, then its files."""
    algorithm = cfg.algorithm or ("nsga2" if len(problem.objectives) >= 2 else "evolution")
    out = run.search_dir(tag)
    out.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    config = {
        **config_to_dict(cfg),
        "algorithm": algorithm,
        "device": problem.device,
        "tag": tag,
        "storage": storage,
    }
    stage = f"search-{tag}"
    run.begin_stage(stage, config=config, seed=cfg.seed, device=problem.device, argv=argv)
    observer.started(tag, algorithm, cfg.budget)
    try:
        result = run_search(
            space, problem.objectives, algorithm=algorithm, budget=cfg.budget, seed=cfg.seed,
            population=cfg.population, constraints=problem.constraints, extra=problem.extra,
            storage=storage, study_name=tag, sync=cfg.storage is not None,
            on_use=observer.used, on_score=observer.scored,
            screen=accuracy_screen(cfg, problem, space),
        )
    except BaseException:
        run.end_stage(stage, status="failed")
        raise
    finally:
        observer.stopped()
    result = dataclasses.replace(result, front=_with_complexity(space, result.front))
    measured, note = _measure(cfg, problem, accuracy, result.front)
    search = DeviceSearch(run.name, tag, algorithm, problem, result, out, measured, note)
    _write(search, {**header, "device": problem.device, "algorithm": algorithm, "config": config})
    run.end_stage(stage, summary=search.summary())
    return search


def _with_complexity(space: SearchSpace, front: list[Candidate]) -> list[Candidate]:
    """Front members with their MACs and parameters (pareto.csv, the table), when missing."""
    return [dataclasses.replace(c, values={**space.complexity(c.arch), **c.values})
            if not {"macs", "params"} <= c.values.keys() else c for c in front]


def _write(search: DeviceSearch, header: dict[str, Any]) -> None:
    """pareto.json, pareto.csv, trials.jsonl and (two objectives or more) pareto.png and
    hypervolume.png."""
    problem, result = search.problem, search.result
    write_front(
        search.out,
        result.front,
        objectives=problem.objectives,
        constraints=problem.constraints,
        header=header,
        measured=search.measured,
    )
    write_trials(search.out, result.history, result.rejected)
    if search.plotted:
        plot_front(
            search.out / "pareto.png",
            result.history,
            result.front,
            x=problem.objectives[1],
            y=problem.objectives[0],
            constraints=problem.constraints,
            title=f"{search.run} / {search.tag}: {search.algorithm}",
            measured=search.measured,
        )
        plot_hypervolume(search.out / "hypervolume.png", result.history, problem.objectives,
                         title=f"{search.run} / {search.tag}")


def _measure(
    cfg: SearchConfig, problem: Problem, accuracy: Any, front: list[Candidate]
) -> tuple[dict[str, float], str | None]:
    """The front's latency timed here, when the device was profiled on this machine."""
    if not (cfg.measure and problem.latency is not None and accuracy is not None and front):
        return {}, None
    if not problem.latency.local:
        return {}, f"device {problem.device} was profiled elsewhere: front not measured here"
    measured = metrics.measure_latency(
        accuracy.supernet,
        [c.arch for c in front],
        device=str(problem.device),
        meta=problem.latency.meta,
    )
    return measured, None
