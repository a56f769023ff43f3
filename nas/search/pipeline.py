"""`nas search` end to end: problems per device, each device's search with its stage record,
its files in `runs/NAME/search/TAG/`, and the front timed here when the device is this machine.

The command only parses options and renders what a `SearchObserver` is told; scripts and
`nas quickstart` call `run_searches` directly.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import config_to_dict
from nas.locks import stage_lock
from nas.names import check_name, device_dirname
from nas.rank.trust import supernet_trust
from nas.search import objectives as metrics
from nas.search.base import Candidate
from nas.search.claims import has_claims
from nas.search.optimize import SearchResult, run_search
from nas.search.output import flat, plot_front, plot_hypervolume, write_front, write_trials
from nas.search.problems import (
    LATENCY,
    Problem,
    SearchConfig,
    SearchTarget,
    Setup,
    accuracy_screen,
    prepare,
)
from nas.search.searchers import SEARCHERS
from nas.search.study_file import STUDY_FILE, check_study_file
from nas.search.workers import run_workers
from search_spaces.base import SearchSpace


class SearchObserver:
    """What `run_searches` reports while it runs; every hook here does nothing.

    Lifecycle: before any search, `note(text)` with the supernet's ranking quality when the run
    has a ranking report (`nas rank`), and `warning(text)` once per input that should not be
    trusted blindly (a poor latency predictor per device, a supernet ranking subnets no better
    than their parameter count); then, per device, `started(tag, algorithm, budget)`,
    `scored(candidate)` as soon as each new subnet is scored (one worker only), `used(candidate,
    fresh)` for each subnet the search uses (`fresh`: scored now, not read from the study; a
    batch is used once all of it is scored), `stopped()` (always, also when the search fails),
    and `finished(search)`
    once the device's files are written.
    """

    def note(self, text: str) -> None:
        """A fact about the search's inputs worth showing first (the supernet's ranking)."""

    def warning(self, text: str) -> None:
        """A device's predictor is poor or was profiled on another machine, or the supernet
        ranks subnets no better than their parameter count."""

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
    if target.tag is not None:
        check_name(target.tag, "--tag")  # before anything is loaded or written
    setup = prepare(cfg, target)
    tags = _tags(target, setup.problems)
    if cfg.storage is None:  # damaged earlier searches fail before any note or warning
        for tag in tags:
            check_study_file(setup.run.search_dir(tag), tag)
    trust = supernet_trust(setup.run) if setup.accuracy is not None else None
    if trust is not None:
        observer.note(trust.summary)
        if trust.warning:
            observer.warning(trust.warning)
    for problem in setup.problems:
        if problem.latency is not None and problem.latency.warning:
            observer.warning(problem.latency.warning)
    header: dict[str, Any] = {"space": setup.space.spec(), "run": setup.run.name}
    if trust is not None:
        header["ranking"] = dataclasses.asdict(trust)  # what the search knew of its supernet
    searches = []
    for tag, problem in zip(tags, setup.problems, strict=True):
        # one writer per search; processes sharing a study (--storage) coordinate in it
        with stage_lock(setup.run.path, f"search-{tag}", wait=target.wait,
                        hint="or use another --tag", enabled=cfg.storage is None):
            search = _search_device(cfg, target, setup, tag, problem, header, observer)
        observer.finished(search)
        searches.append(search)
    return searches


def _tags(target: SearchTarget, problems: Sequence[Problem]) -> list[str]:
    """Each problem's search tag: --tag (`<tag>-<device>` with several devices), else the
    device's folder name, else `oracle`."""
    tags = []
    for problem in problems:
        device = device_dirname(problem.device) if problem.device else None
        several = len(problems) > 1
        tags.append(f"{target.tag}-{device}" if target.tag and several
                    else target.tag or device or "oracle")
    return tags


def _search_device(
    cfg: SearchConfig,
    target: SearchTarget,
    setup: Setup,
    tag: str,
    problem: Problem,
    header: dict[str, Any],
    observer: SearchObserver,
) -> DeviceSearch:
    """One device's search as the stage `search-<tag>`, then its files."""
    run, space = setup.run, setup.space
    algorithm = cfg.algorithm or ("nsga2" if len(problem.objectives) >= 2 else "evolution")
    out = run.search_dir(tag)
    out.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage or f"sqlite:///{(out / STUDY_FILE).resolve()}"
    config = {
        **config_to_dict(cfg),
        "algorithm": algorithm,
        "device": problem.device,
        "tag": tag,
        "storage": storage,
    }
    stage = f"search-{tag}"
    run.begin_stage(stage, config=config, seed=cfg.seed, device=problem.device, argv=target.argv)
    observer.started(tag, algorithm, cfg.budget)
    try:
        if cfg.workers > 1:
            result = run_workers(
                cfg, target, tag=tag, problem=problem, space=space, storage=storage,
                on_use=_scored_then_used(observer),
            )
        else:
            result = run_search(
                space, problem.objectives, algorithm=algorithm, budget=cfg.budget,
                seed=cfg.seed, population=cfg.population, constraints=problem.constraints,
                extra=problem.extra, storage=storage, study_name=tag,
                shared=cfg.storage is not None or has_claims(storage, tag),
                on_use=observer.used, on_score=observer.scored,
                screen=accuracy_screen(cfg, problem, space, setup.accuracy),
            )
    except BaseException:
        run.end_stage(stage, status="failed")
        raise
    finally:
        observer.stopped()
    result = dataclasses.replace(result, front=_with_complexity(space, result.front))
    measured, note = _measure(cfg, problem, setup.accuracy, result.front)
    search = DeviceSearch(run.name, tag, algorithm, problem, result, out, measured, note)
    _write(search, {**header, "device": problem.device, "algorithm": algorithm, "config": config})
    run.end_stage(stage, summary=search.summary())
    return search


def _scored_then_used(observer: SearchObserver) -> Callable[[Candidate, bool], None]:
    """Workers report each subnet once, as it appears in the study: a fresh one was just
    scored, so the observer hears `scored` then `used`, as from a search in this process."""
    def report(candidate: Candidate, fresh: bool) -> None:
        if fresh:
            observer.scored(candidate)
        observer.used(candidate, fresh)

    return report


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


__all__ = ["DeviceSearch", "SearchConfig", "SearchObserver", "SearchTarget", "run_searches"]
