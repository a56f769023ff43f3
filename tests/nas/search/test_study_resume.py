"""Studies: resume after an interruption (nothing lost or repeated), two processes on one study."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas.search.base import Objective
from nas.search.optimize import run_search
from nas.search.oracle import Oracle
from nas.search.study import StudyRecorder, open_study
from search_spaces.nb201 import NB201Space

BUDGET = 40


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""


def objectives(oracle: Oracle, *, kill_after: int | None = None) -> list[Objective]:
    top1 = oracle.objective("top1", "maximize", cheap=False)
    calls = [0]

    def evaluate(archs: Sequence[Any]) -> np.ndarray:
        calls[0] += len(archs)
        if kill_after is not None and calls[0] > kill_after:
            raise Killed
        return top1.evaluate(archs)

    return [Objective("top1", "maximize", evaluate),
            oracle.objective("latency_ms", "minimize", cheap=True)]


def complete(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t for t in study.get_trials(states=(TrialState.COMPLETE,))
            if not t.user_attrs.get("duplicate")]


@pytest.mark.parametrize(
    "name",
    ["nsga2", "evolution",
     # Optuna samplers write asked trials in several SQLite transactions: seconds, not ms
     pytest.param("random", marks=pytest.mark.slow),
     pytest.param("optuna-nsga2", marks=pytest.mark.slow)],
)
def test_resume_after_kill_loses_and_repeats_nothing(
    name: str, oracle: Oracle, space: NB201Space, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # Optuna samplers write each asked trial in several transactions: keep their budget small
    budget = BUDGET if name in ("nsga2", "evolution") else 16
    kwargs: dict[str, Any] = dict(algorithm=name, budget=budget, seed=5, population=8)
    with pytest.raises(Killed):
        run_search(space, objectives(oracle, kill_after=9), storage=storage, **kwargs)
    before = complete(storage, "search")
    assert 0 < len(before) <= 9
    resumed = run_search(space, objectives(oracle), storage=storage, **kwargs)
    after = complete(storage, "search")
    ids = [t.user_attrs["arch_id"] for t in after]
    assert len(ids) == budget and len(set(ids)) == budget  # nothing repeated
    assert {t.number for t in before} <= {t.number for t in after}  # nothing lost
    assert resumed.new_evaluations == budget - len(before)
    if name in ("nsga2", "evolution"):  # our searchers replay exactly: same as never killed
        reference = run_search(space, objectives(oracle), **kwargs)
        assert [c.arch_id for c in resumed.history] == [c.arch_id for c in reference.history]


def test_trials_carry_params_and_metrics(
    oracle: Oracle, space: NB201Space, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_search(space, objectives(oracle), algorithm="nsga2", budget=8, seed=0, population=4,
               storage=storage)
    trial = complete(storage, "search")[0]
    assert trial.params == {k: trial.user_attrs["arch"][k] for k in trial.params}
    assert len(trial.params) == 6  # one categorical per edge, as space.suggest draws them
    assert trial.values[0] == trial.user_attrs["metrics"]["top1"]


def test_stale_running_trial_of_dead_process_marked_failed(
    oracle: Oracle, space: NB201Space
) -> None:
    objs = objectives(oracle)
    recorder = StudyRecorder(open_study(None, "s", objs), space, objs)
    trial = recorder.study.ask()
    # a pid above the kernel's largest pid_max: never alive
    trial.set_user_attr("owner", {"pid": 2**22 + 12345, "host": socket.gethostname()})
    alive = recorder.study.ask()
    recorder.tag_running(alive)  # this very process: left alone
    assert recorder.fail_stale() == 1
    states = [t.state for t in recorder.study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING]


WORKER = textwrap.dedent("""
    import pathlib
    import sys
    import time
    from nas.search.oracle import Oracle
    from nas.search.optimize import run_search
    from search_spaces.nb201 import NB201Space
    from search_spaces.nb201.synthetic import synthetic_table

    storage, algorithm, seed, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    barrier = pathlib.Path(sys.argv[5])
    space = NB201Space()
    oracle = Oracle(synthetic_table(0), space)
    # the scorer takes a little time, as a real one does: neither worker can take the whole
    # budget while the other is still importing torch on a loaded machine
    objs = [oracle.objective("top1", "maximize", cheap=False, delay=0.02),
            oracle.objective("latency_ms", "minimize", cheap=True)]
    (barrier / f"ready-{seed}").touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    run_search(space, objs, algorithm=algorithm, budget=budget, seed=seed, population=8,
               storage=storage, study_name="shared", shared=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random", "nsga2"])
def test_two_processes_share_one_sqlite_study(name: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen([sys.executable, str(script), storage, name, str(seed), str(BUDGET),
                          str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    trials = complete(storage, "shared")
    ids = [t.user_attrs["arch_id"] for t in trials]
    assert len(ids) == len(set(ids))  # no subnet scored twice, across processes
    assert len({t.user_attrs["owner"]["pid"] for t in trials}) == 2  # both contributed
    assert len(ids) == BUDGET  # the budget is the study's, whatever the searcher


def test_slow_scorer_records_each_subnet_before_the_next(
    oracle: Oracle, space: NB201Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nas.search import evaluator

    monkeypatch.setattr(evaluator, "SLOW_S", -1.0)  # every scorer counts as slow (a supernet)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(Killed):  # killed while scoring the initial population's 4th subnet
        run_search(space, objectives(oracle, kill_after=3), algorithm="nsga2", budget=12,
                   seed=0, population=6, storage=storage)
    assert len(complete(storage, "search")) == 3  # the three finished ones were kept
