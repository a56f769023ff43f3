"""Workers sharing one study: atomic claims, a study-wide budget and heartbeats.

Several processes (`nas search --workers N`, or one `nas search --storage URL` per machine)
work on one Optuna study. Before a worker scores a subnet it *claims* it: it inserts a row
`(study, slot, arch_id)` into `nas_claims`, a table created beside Optuna's in the same
database. Two unique keys make every decision atomic:

- `(study, arch_id)`: one subnet, one claim; a worker whose insert fails on this key leaves
  the subnet to its owner, so no two workers ever score one;
- `(study, slot)` with `slot < budget`: a claim takes one of `budget` numbered slots, so
  however many workers race, the study never holds more than `budget` scored subnets.

Why a table of our own rather than Optuna's rows: Optuna's schema has no unique key on user
data (`arch_id` would be a user attribute, any number of trials may carry the same value), and
a count-then-insert on its trials is a race unless every dialect's own lock is taken
(`BEGIN IMMEDIATE` on SQLite, `SELECT ... FOR UPDATE` on PostgreSQL). Unique keys behave the
same on SQLite, PostgreSQL and MySQL, and a failed insert costs one round trip.

A claim is `done` once its result is final; the worker marks it done (only if it still owns
the claim) before it writes the trial. A worker also keeps a row in `nas_workers` whose
`beats` counter a background thread increments every `interval` seconds, as Optuna's
`heartbeat_interval` does for RUNNING trials. Another worker sees it dead when the counter
has not moved for `grace` seconds of its *own* monotonic clock: no timestamps are compared,
so neither machines' clocks nor the database sessions' time zones need to agree. Any live
worker may then take over the dead one's unfinished claims (an atomic
`UPDATE ... WHERE worker = <dead one>`, so one worker wins) and score them again.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa

from nas.arch import canonical_json

logger = logging.getLogger(__name__)

METADATA = sa.MetaData()
CLAIMS = sa.Table(
    "nas_claims",
    METADATA,
    sa.Column("study", sa.String(512), primary_key=True),  # Optuna's study name (unique)
    sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("arch_id", sa.String(64), nullable=False),
    sa.Column("arch", sa.Text, nullable=False),  # canonical JSON: what an adopter scores
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.UniqueConstraint("study", "arch_id", name="nas_claims_study_arch"),
)
WORKERS = sa.Table(
    "nas_workers",
    METADATA,
    sa.Column("worker", sa.String(128), primary_key=True),
    sa.Column("study", sa.String(512), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("beats", sa.Integer, nullable=False),
)


class Claim(enum.Enum):
    """What `StudyClaims.claim` got."""

    MINE = "mine"  # score it
    TAKEN = "taken"  # another worker scores (or scored) it
    FULL = "full"  # every slot of the budget is taken


class ClaimRow(NamedTuple):
    """One claim: its budget slot, subnet, worker and whether its result is final."""

    slot: int
    arch_id: str
    worker: str
    done: bool


@dataclass(frozen=True)
class Orphan:
    """A claim of a dead worker, now this worker's to score."""

    slot: int
    arch_id: str
    arch: dict[str, Any]


def create_engine(url: str) -> sa.Engine:
    """An engine on `url`; SQLite waits for the write lock instead of failing at once."""
    if url.startswith("sqlite:"):
        return sa.create_engine(url, connect_args={"timeout": 60})
    return sa.create_engine(url, pool_pre_ping=True)


def enable_wal(url: str) -> None:
    """Put a SQLite database in WAL mode (readers never block the writer; it persists)."""
    if not url.startswith("sqlite:"):
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        engine.dispose()


def prepare_storage(url: str) -> None:
    """WAL mode (SQLite) and the claims tables, before workers start on `url` together."""
    enable_wal(url)
    engine = create_engine(url)
    try:
        _create_tables(engine)
    finally:
        engine.dispose()


def has_claims(url: str, study: str) -> bool:
    """Whether workers have shared study `study` in `url` (it then stays shared: its budget
    is counted in claims, also for a later search by one process)."""
    engine = create_engine(url)
    try:
        if not sa.inspect(engine).has_table(CLAIMS.name):
            return False
        with engine.connect() as conn:
            row = conn.execute(sa.select(CLAIMS.c.slot).where(CLAIMS.c.study == study).limit(1))
            return row.first() is not None
    finally:
        engine.dispose()


def _create_tables(engine: sa.Engine) -> None:
    # workers starting together race to create the tables; the losers see them next time
    for attempt in range(6):
        try:
            METADATA.create_all(engine)
            return
        except sa.exc.SQLAlchemyError:
            if attempt == 5:
                raise
            time.sleep(0.2 * (attempt + 1))


class StudyClaims:
    """This worker's view of the claims of one study.

    Args:
        url: the study's storage URL (the same database as Optuna's tables).
        study: the study's name.
        budget: scored subnets the whole study may hold.
        interval: seconds between heartbeats.
        grace: seconds of silence after which a worker counts as dead (default 3 * interval).
        seed: seeds the choice of free slots (spreads workers over them).
    """

    def __init__(
        self,
        url: str,
        study: str,
        *,
        budget: int,
        interval: float = 10.0,
        grace: float | None = None,
        seed: int = 0,
    ) -> None:
        self.engine = create_engine(url)
        _create_tables(self.engine)
        self.study, self.budget = study, budget
        self.interval = interval
        self.grace = grace if grace is not None else 3 * interval
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.worker = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._rng = np.random.default_rng(seed)
        self._taken: set[int] = set()
        self._beats: dict[str, tuple[int, float]] = {}  # worker -> (beats, when they changed)
        self._stop = threading.Event()
        with self.engine.begin() as conn:
            conn.execute(
                WORKERS.insert().values(
                    worker=self.worker, study=study, host=self.host, pid=self.pid, beats=0
                )
            )
        self._thread = threading.Thread(target=self._beat, name="nas-heartbeat", daemon=True)
        self._thread.start()

    # --- heartbeat -------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        WORKERS.update()
                        .where(WORKERS.c.worker == self.worker)
                        .values(beats=WORKERS.c.beats + 1)
                    )
            except sa.exc.SQLAlchemyError:  # a missed beat is retried; grace covers a few
                logger.warning("heartbeat of %s failed", self.worker, exc_info=True)

    def close(self) -> None:
        """Stop the heartbeat, give back unfinished claims (others take them at once) and
        leave the workers' table."""
        self._stop.set()
        self._thread.join()
        with self.engine.begin() as conn:
            mine = sa.and_(CLAIMS.c.study == self.study, CLAIMS.c.worker == self.worker)
            conn.execute(CLAIMS.delete().where(mine, CLAIMS.c.done.is_(False)))
            conn.execute(WORKERS.delete().where(WORKERS.c.worker == self.worker))
        self.engine.dispose()

    # --- claims ----------------------------------------------------------------------------
    def _where(self, **columns: Any) -> Any:
        return sa.and_(
            CLAIMS.c.study == self.study,
            *(CLAIMS.c[name] == value for name, value in columns.items()),
        )

    def _refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(CLAIMS.c.slot).where(self._where()))
            self._taken = {int(slot) for (slot,) in rows}

    def count(self) -> int:
        """Claims in the study (finished or not): the budget it has used."""
        self._refresh()
        return len(self._taken)

    def claim(self, aid: str, arch: Mapping[str, Any], *, done: bool = False) -> Claim:
        """Claim subnet `aid` for this worker (`done`: it is already scored and recorded)."""
        for _ in range(10 * self.budget + 10):
            free = sorted(set(range(self.budget)) - self._taken)
            if not free:
                self._refresh()
                free = sorted(set(range(self.budget)) - self._taken)
                if not free:
                    return self._held(aid) or Claim.FULL
            slot = int(self._rng.choice(free))
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        CLAIMS.insert().values(
                            study=self.study, slot=slot, arch_id=aid,
                            arch=canonical_json(arch), worker=self.worker, done=done,
                        )
                    )
            except sa.exc.IntegrityError:
                held = self._held(aid)
                if held is not None:
                    return held
                self._taken.add(slot)  # another worker took the slot first: try another
                continue
            self._taken.add(slot)
            return Claim.MINE
        raise AssertionError("claim: no slot after trying every one")  # pragma: no cover

    def _held(self, aid: str) -> Claim | None:
        """MINE or TAKEN when `aid` is claimed already (MINE: adopted by this worker)."""
        owner = self.owner(aid)
        if owner is None:
            return None
        return Claim.MINE if owner == self.worker else Claim.TAKEN

    def owner(self, aid: str) -> str | None:
        """The worker holding the claim on `aid`, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(CLAIMS.c.worker).where(self._where(arch_id=aid)))
            found = row.first()
        return None if found is None else str(found[0])

    def finish(self, aid: str) -> bool:
        """Mark this worker's claim on `aid` done; False when another worker adopted it."""
        with self.engine.begin() as conn:
            result = conn.execute(
                CLAIMS.update()
                .where(self._where(arch_id=aid, worker=self.worker, done=False))
                .values(done=True)
            )
        return bool(result.rowcount == 1)

    # --- dead workers ----------------------------------------------------------------------
    def pending(self) -> list[ClaimRow]:
        """Every claim of the study."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(CLAIMS.c.slot, CLAIMS.c.arch_id, CLAIMS.c.worker, CLAIMS.c.done)
                .where(self._where())
            )
            return [ClaimRow(int(s), str(a), str(w), bool(d)) for s, a, w, d in rows]

    def live_workers(self) -> set[str]:
        """Workers of the study whose heartbeat moved in the last `grace` seconds (a worker
        seen for the first time counts as alive until it has been watched that long)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(WORKERS.c.worker, WORKERS.c.beats).where(WORKERS.c.study == self.study)
            ).all()
        now, live = time.monotonic(), set()
        for worker, beats in rows:
            seen = self._beats.get(worker)
            if seen is None or seen[0] != beats:
                self._beats[worker] = seen = (int(beats), now)
            if now - seen[1] <= self.grace:
                live.add(str(worker))
        return live

    def orphans(self) -> list[ClaimRow]:
        """Claims of dead workers (done or not: a done one may lack its trial)."""
        live = self.live_workers() | {self.worker}
        return [row for row in self.pending() if row.worker not in live]

    def take(self, row: ClaimRow) -> Orphan | None:
        """Take over a dead worker's claim (None: another worker took it first)."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                CLAIMS.update()
                .where(self._where(slot=row.slot, worker=row.worker))
                .values(worker=self.worker, done=False)
            ).rowcount
            text = conn.execute(sa.select(CLAIMS.c.arch).where(self._where(slot=row.slot)))
            arch = text.scalar_one()
        if taken != 1:
            return None
        logger.info("took over %s from dead worker %s", row.arch_id, row.worker)
        return Orphan(row.slot, row.arch_id, json.loads(arch))
