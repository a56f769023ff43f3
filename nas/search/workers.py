"""`nas search --workers N`: N local processes searching one study together.

The parent opens the study (SQLite in WAL mode unless `--storage` names another database),
starts N workers, `python -m nas.search.workers JOB`, and follows the study to report each
new trial; it scores nothing itself. Each worker rebuilds the problem from the options (its
objectives hold a supernet or a table, which cannot be sent to another process) and runs one
shared search (`run_search(..., shared=True)`) with its own seed, drawn from `--seed`. When
they have all finished, the study holds the whole result: the parent reads every trial of it.

A worker prints one JSON line (what it scored and rejected) on stdout; a worker that fails
makes the parent stop the others and raise its error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from nas.config import config_to_dict
from nas.errors import NasError
from nas.search.base import Candidate, pareto_front
from nas.search.claims import prepare_storage
from nas.search.optimize import SearchResult, run_search
from nas.search.problems import Problem, SearchConfig, SearchTarget, accuracy_screen, prepare
from nas.search.study import StudyRecorder, open_study
from search_spaces.base import SearchSpace

POLL_S = 0.5


def worker_seed(seed: int, index: int) -> int:
    """Worker `index`'s seed: independent streams drawn from the search's `seed`."""
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


@dataclass(frozen=True)
class _Job:
    """What one worker process is told (as JSON on its command line)."""

    config: dict[str, Any]
    target: dict[str, Any]
    tag: str
    device: str | None
    storage: str
    index: int


def run_workers(
    cfg: SearchConfig,
    target: SearchTarget,
    *,
    tag: str,
    problem: Problem,
    space: SearchSpace,
    storage: str,
    on_use: Callable[[Candidate, bool], None] | None = None,
) -> SearchResult:
    """Search `problem` with `cfg.workers` processes on study `tag` in `storage`.

    Args:
        on_use: called with every subnet of the study as it appears (`fresh`: scored by
            this search's workers rather than found in the study at the start).

    Raises:
        NasError: when a worker fails (the others are stopped).
    """
    prepare_storage(storage)  # tables and WAL before the workers race to create them
    recorder = StudyRecorder(open_study(storage, tag, problem.objectives), space,
                             problem.objectives, url=storage)
    reported: set[str] = set()

    def report(candidate: Candidate, fresh: bool) -> None:
        if candidate.arch_id not in reported:
            reported.add(candidate.arch_id)
            if on_use is not None:
                on_use(candidate, fresh)

    for stored in recorder.poll():
        report(stored.candidate, False)
    target_fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(target).items()}
    jobs = [
        _Job(config_to_dict(cfg), target_fields, tag, problem.device, storage, index)
        for index in range(cfg.workers)
    ]
    start = time.perf_counter()
    with _Processes(jobs, cfg.workers) as processes:
        while processes.running():
            for stored in recorder.poll():
                report(stored.candidate, True)
            time.sleep(POLL_S)
        summaries = processes.summaries()
    history: dict[str, Candidate] = {}
    for stored in recorder.read_all():
        history.setdefault(stored.candidate.arch_id, stored.candidate)
        report(stored.candidate, True)
    found = list(history.values())
    return SearchResult(
        history=found,
        front=pareto_front(found, problem.objectives),
        rejected=sum(s["rejected"] for s in summaries),
        new_evaluations=sum(s["new_evaluations"] for s in summaries),
        seconds=time.perf_counter() - start,
        screened=sum(s["screened"] for s in summaries),
    )


class _Processes:
    """The worker processes: started on entry, stopped on exit if still running."""

    def __init__(self, jobs: Sequence[_Job], workers: int) -> None:
        self.jobs = list(jobs)
        self.env = dict(os.environ)
        # the workers share the cores: one BLAS/torch thread pool each, unless told otherwise
        threads = max(1, (os.cpu_count() or 1) // workers)
        self.env.setdefault("OMP_NUM_THREADS", str(threads))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[tuple[IO[bytes], IO[bytes]]] = []

    def __enter__(self) -> _Processes:
        for job in self.jobs:
            out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            command = [sys.executable, "-m", "nas.search.workers", json.dumps(asdict(job))]
            self.procs.append(subprocess.Popen(command, stdout=out, stderr=err, env=self.env))
            self.outputs.append((out, err))
        return self

    def running(self) -> bool:
        """Whether a worker is still at work; raises the first failure."""
        for index, proc in enumerate(self.procs):
            code = proc.poll()
            if code not in (None, 0):
                raise NasError(f"search worker {index} failed (exit code {code}): "
                               f"{self._text(index, 1)[-2000:].strip()}")
        return any(proc.poll() is None for proc in self.procs)

    def summaries(self) -> list[dict[str, int]]:
        lines = [self._text(i, 0).strip().splitlines() for i in range(len(self.procs))]
        return [json.loads(text[-1]) for text in lines]

    def _text(self, index: int, stream: int) -> str:
        handle = self.outputs[index][stream]
        handle.seek(0)
        return handle.read().decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # a worker gives its unfinished claims back on SIGTERM
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out, err in self.outputs:
            out.close()
            err.close()


def _work(job: _Job) -> dict[str, int]:
    """One worker: the problem rebuilt from the options, one shared search."""
    cfg = SearchConfig(**job.config)
    fields = dict(job.target)
    for key in ("runs_dir", "oracle"):
        if fields.get(key) is not None:
            fields[key] = Path(fields[key])
    target = SearchTarget(**{**fields, "devices": [job.device] if job.device else []})
    setup = prepare(cfg, target)
    problem = setup.problems[0]
    algorithm = cfg.algorithm or ("nsga2" if len(problem.objectives) >= 2 else "evolution")
    result = run_search(
        setup.space, problem.objectives, algorithm=algorithm, budget=cfg.budget,
        seed=worker_seed(cfg.seed, job.index), population=cfg.population,
        constraints=problem.constraints, extra=problem.extra, storage=job.storage,
        study_name=job.tag, shared=True,
        screen=accuracy_screen(cfg, problem, setup.space, setup.accuracy),
    )
    return {
        "new_evaluations": result.new_evaluations,
        "rejected": result.rejected,
        "screened": result.screened,
    }


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the worker's claims are given back


def main(argv: Sequence[str]) -> int:
    """Entry point of a worker process: `python -m nas.search.workers JOB_JSON`."""
    signal.signal(signal.SIGTERM, _stop)
    job = _Job(**json.loads(argv[0]))
    try:
        summary = _work(job)
    except NasError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
