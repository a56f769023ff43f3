"""Workers sharing one study: claims, a study-wide budget, dead workers, one front for all.

Every test runs on SQLite and, when the machine can start one, on a real PostgreSQL server
(`nas.testing.postgres`; skipped with the reason otherwise).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from nas.search.base import Candidate, Objective, pareto_front
from nas.search.claims import CLAIMS, Claim, StudyClaims
from nas.search.oracle import Oracle
from nas.testing.postgres import temporary_postgres, unavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with temporary_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    server: str = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def scored(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t for t in study.get_trials(states=(TrialState.COMPLETE,))
            if not t.user_attrs.get("duplicate")]


def test_claims_are_unique_and_bounded_by_the_budget(storage: str) -> None:
    one = StudyClaims(storage, "s", budget=3, seed=1)
    two = StudyClaims(storage, "s", budget=3, seed=2)
    try:
        assert one.claim("a", {"x": 1}) is Claim.MINE
        assert two.claim("a", {"x": 1}) is Claim.TAKEN  # one subnet, one owner
        assert two.claim("b", {"x": 2}) is Claim.MINE
        assert one.claim("c", {"x": 3}) is Claim.MINE
        assert two.claim("d", {"x": 4}) is Claim.FULL  # three slots, all taken
        assert one.count() == 3
        assert one.finish("a") and not two.finish("a")  # only the owner finishes a claim
    finally:
        one.close()
        two.close()
    left = StudyClaims(storage, "s", budget=3)
    try:  # closing gave the unfinished claims back; the finished one stays
        assert [(aid, done) for _, aid, _, done in left.pending()] == [("a", True)]
    finally:
        left.close()


def test_racing_workers_never_exceed_the_budget(storage: str) -> None:
    budget, workers = 20, 6
    won: list[list[str]] = [[] for _ in range(workers)]

    def race(index: int) -> None:
        claims = StudyClaims(storage, "race", budget=budget, seed=index)
        try:
            # overlapping subnets: everyone wants "0".."39", each in its own order
            for k in np.random.default_rng(index).permutation(40):
                aid = str(k)
                if claims.claim(aid, {"k": aid}) is Claim.MINE:
                    won[index].append(aid)
        finally:
            for aid in won[index]:
                claims.finish(aid)
            claims.close()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [aid for claimed in won for aid in claimed]
    assert len(ids) == budget and len(set(ids)) == budget
    engine = sa.create_engine(storage)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CLAIMS.c.slot)).all()
    engine.dispose()
    assert sorted(slot for (slot,) in rows) == list(range(budget))


def test_dead_workers_claims_are_adopted(storage: str) -> None:
    dead = StudyClaims(storage, "s", budget=4, interval=0.2)
    live = StudyClaims(storage, "s", budget=4, interval=0.2, grace=1.0)
    try:
        assert dead.claim("a", {"x": 1}) is Claim.MINE
        assert dead.claim("b", {"x": 2}) is Claim.MINE and dead.finish("b")
        dead._stop.set()  # its heartbeat stops as if killed
        assert live.orphans() == []  # not watched for the grace period yet
        time.sleep(1.5)
        rows = live.orphans()  # "b" is done: its trial may be missing (died in between)
        assert sorted((r.arch_id, r.done) for r in rows) == [("a", False), ("b", True)]
        orphan = live.take(next(r for r in rows if r.arch_id == "a"))
        assert orphan is not None and orphan.arch == {"x": 1}
        assert live.take(next(r for r in rows if r.arch_id == "a")) is None  # taken once
        assert live.claim("a", {"x": 1}) is Claim.MINE  # now held by the adopter
        assert not dead.finish("a")  # a worker that comes back finds its claim gone
    finally:
        live.close()
        dead.engine.dispose()


WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from nas.search.base import Objective
    from nas.search.oracle import Oracle
    from nas.search.optimize import run_search
    from search_spaces.nb201 import NB201Space
    from search_spaces.nb201.synthetic import synthetic_table

    storage, algorithm, seed, budget, delay, heartbeat = sys.argv[1:7]
    space = NB201Space()
    oracle = Oracle(synthetic_table(0), space)
    top1 = oracle.objective("top1", "maximize", cheap=False, delay=float(delay))
    objectives = [top1, oracle.objective("latency_ms", "minimize", cheap=True)]
    result = run_search(space, objectives, algorithm=algorithm, budget=int(budget),
                        seed=int(seed), population=16, storage=storage, study_name="shared",
                        shared=True, heartbeat=float(heartbeat))
    print(json.dumps({"front": [c.arch_id for c in result.front],
                      "history": len(result.history), "new": result.new_evaluations}))
""")


def start_workers(
    tmp_path: Path, storage: str, algorithm: str, seeds: list[int], *, budget: int,
    delay: float = 0.0, heartbeat: float = 10.0,
) -> list[subprocess.Popen[str]]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [
        subprocess.Popen(
            [sys.executable, str(script), storage, algorithm, str(seed), str(budget),
             str(delay), str(heartbeat)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for seed in seeds
    ]


def finished(workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def front_of(trials: list[optuna.trial.FrozenTrial], objectives: list[Objective]) -> set[str]:
    candidates = [
        Candidate(t.user_attrs["arch"], t.user_attrs["arch_id"], t.user_attrs["metrics"])
        for t in trials
    ]
    return {c.arch_id for c in pareto_front(candidates, objectives)}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["nsga2", "evolution"])
def test_four_workers_one_budget_one_front(
    algorithm: str, storage: str, tmp_path: Path, base_oracle: Oracle
) -> None:
    if algorithm == "evolution" and not storage.startswith("sqlite"):
        pytest.skip("evolution shares the study as NSGA-II does: one database is enough")
    budget = 200
    workers = start_workers(tmp_path, storage, algorithm, [1, 2, 3, 4], budget=budget)
    reports = finished(workers)
    trials = scored(storage, "shared")
    ids = [t.user_attrs["arch_id"] for t in trials]
    assert len(ids) == budget and len(set(ids)) == budget  # the study's budget, none twice
    assert sum(r["new"] for r in reports) == budget
    assert sum(r["new"] > 0 for r in reports) >= 2  # the work was shared
    objectives = [base_oracle.objective("top1", "maximize", cheap=False),
                  base_oracle.objective("latency_ms", "minimize", cheap=True)]
    truth = front_of(trials, objectives)
    for report in reports:  # every worker reports the front of all 200 trials
        assert report["history"] == budget
        assert set(report["front"]) == truth


@pytest.mark.slow
def test_killed_worker_claim_is_scored_by_another(storage: str, tmp_path: Path) -> None:
    budget = 12
    [victim] = start_workers(tmp_path, storage, "nsga2", [1], budget=budget, delay=30.0)
    engine = sa.create_engine(storage)
    try:
        claimed: list[Any] = []
        for _ in range(600):  # its first subnet is claimed, then it sleeps 30 s scoring it
            time.sleep(0.1)
            try:
                with engine.connect() as conn:
                    claimed = conn.execute(sa.select(CLAIMS.c.arch_id)).all()
            except sa.exc.SQLAlchemyError:  # tables not created yet
                continue
            if claimed:
                break
        assert claimed, "the first worker never claimed a subnet"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        [rescuer] = start_workers(tmp_path, storage, "nsga2", [2], budget=budget,
                                  heartbeat=0.3)
        [report] = finished([rescuer])
    finally:
        engine.dispose()
    ids = [t.user_attrs["arch_id"] for t in scored(storage, "shared")]
    assert len(ids) == budget and len(set(ids)) == budget
    assert claimed[0][0] in ids  # the dead worker's subnet was scored by the other
    assert report["new"] == budget
