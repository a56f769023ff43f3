"""Every evaluated subnet is an Optuna trial: choices as params, metrics as user attributes.

The study is the search's durable memory. By default it is a SQLite file,
`runs/NAME/search/TAG/study.db`; any Optuna RDB URL (`--storage postgresql://...`) lets
several processes share one study. On start the evaluator loads the completed trials, so a
killed search resumes without repeating a trial (see `nas.search.evaluator`).

Trials are written only once their metrics are known (`Study.add_trial`), so a kill can never
leave a half-written trial for our own searchers. Optuna samplers use ask/tell; a trial left
RUNNING by a killed process of this machine is marked FAIL on the next start.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from nas.errors import ArtifactError, ConfigError
from nas.locks import pid_alive
from nas.search.base import Candidate, Direction, Objective
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class StoredEvaluation:
    """A completed evaluation read back from the study."""

    number: int
    candidate: Candidate
    pid: int | None
    host: str | None


class _LayoutTrial:
    """Stands in for an Optuna trial to learn the names and choices `space.suggest` uses."""

    def __init__(self) -> None:
        self.distributions: dict[str, CategoricalDistribution] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.distributions[name] = CategoricalDistribution(list(choices))
        return choices[0]


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """`{"kernel_size": [3, 5]}` -> `{"kernel_size_0": 3, "kernel_size_1": 5}`."""
    if isinstance(obj, Mapping):
        items: Any = ((f"{prefix}_{k}" if prefix else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{prefix}_{i}", v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    flat: dict[str, Any] = {}
    for name, value in items:
        flat.update(_flatten(value, name))
    return flat


class ParamLayout:
    """Expresses an arch as the Optuna params `space.suggest` draws, for the dashboard.

    The names and choices are learnt once by running `suggest` on a stand-in trial; an arch's
    flattened keys (`kernel_size_3` for `arch["kernel_size"][3]`) that match a suggested name
    and one of its choices become params. Resuming never relies on params: every trial also
    carries the canonical arch as a user attribute.
    """

    def __init__(self, space: SearchSpace) -> None:
        trial = _LayoutTrial()
        try:
            space.suggest(trial)  # type: ignore[arg-type]
        except Exception:  # a suggest that cannot run on a stand-in just means fewer params
            logger.debug("space %s: suggest() names not learnable", space.name, exc_info=True)
        self.distributions = trial.distributions

    def params(
        self, arch: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        for name, value in _flatten(arch).items():
            dist = self.distributions.get(name)
            if dist is not None and value in dist.choices:
                params[name], distributions[name] = value, dist
        return params, distributions


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    if not url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url)
    # concurrent writers on one SQLite file wait for the lock instead of failing at once
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def _create_with_retries(
    storage: str | None, study_name: str, directions: list[Direction], sampler: Any
) -> optuna.Study:
    """`create_study(load_if_exists=True)`, retried: processes starting together on a fresh
    database race to create its tables and the study, and all but one lose that race once."""
    import sqlalchemy.exc

    attempts = 6
    for attempt in range(attempts):
        try:
            backend: Any = storage
            if storage is not None and storage.startswith("sqlite:"):
                backend = _rdb_storage(storage)
            return optuna.create_study(
                storage=backend,
                study_name=study_name,
                directions=directions,
                load_if_exists=True,
                sampler=sampler,
            )
        except ValueError as exc:
            raise ConfigError(f"study '{study_name}' in {storage}: {exc}") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.DuplicatedStudyError) as exc:
            if attempt == attempts - 1:
                raise ArtifactError(
                    f"could not open study '{study_name}' in {storage}: {exc.__class__.__name__}"
                    f" ({str(exc).splitlines()[0]}); check the --storage URL"
                ) from None
            logger.info("retrying study creation after %s", exc.__class__.__name__)
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(
    storage: str | None,
    study_name: str,
    objectives: Sequence[Objective],
    *,
    seed_sampler: Any = None,
) -> optuna.Study:
    """Create or load study `study_name` in `storage` (None: in memory).

    Raises:
        ConfigError: when an existing study has other objective directions.
    """
    directions = [o.direction for o in objectives]
    study = _create_with_retries(storage, study_name, directions, seed_sampler)
    stored = [d.name.lower() for d in study.directions]
    if stored != directions:
        raise ConfigError(
            f"study '{study_name}' in {storage} has directions {stored}, this search expects "
            f"{directions} (objectives {[o.name for o in objectives]}); use another --tag"
        )
    names = study.user_attrs.get("objectives")
    if names is None:
        study.set_user_attr("objectives", [o.name for o in objectives])
    elif list(names) != [o.name for o in objectives]:
        raise ConfigError(
            f"study '{study_name}' in {storage} optimises {names}, this search asks for "
            f"{[o.name for o in objectives]}; use another --tag"
        )
    return study


class StudyRecorder:
    """Writes evaluations to an Optuna study and reads them back on resume.

    Args:
        study: the study (from `open_study`).
        space: the search space (to express archs as Optuna params).
        objectives: the study's objectives, in the order of its directions.
        url: the study's storage URL, for reads that bypass Optuna's cache (shared studies).
        worker: this worker's id on a shared study (see `nas.search.claims`), kept with each
            trial it writes.
    """

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        url: str | None = None,
        worker: str | None = None,
    ) -> None:
        self.study = study
        self.objectives = list(objectives)
        self.layout = ParamLayout(space)
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.owner: dict[str, Any] = {"pid": self.pid, "host": self.host}
        if worker is not None:
            self.owner["worker"] = worker
        self.url = url
        self._uncached: optuna.storages.RDBStorage | None = None
        self._seen_numbers: set[int] = set()

    def _attrs(self, candidate: Candidate) -> dict[str, Any]:
        # few attributes: each is one database write for asked trials (ask/tell samplers)
        attrs: dict[str, Any] = {
            "arch": dict(candidate.arch),
            "arch_id": candidate.arch_id,
            "metrics": dict(candidate.values),
        }
        if candidate.violation:
            attrs["violation"] = candidate.violation
        return attrs

    def record(self, candidate: Candidate) -> None:
        """Add a trial for a freshly scored candidate (FAIL when a value is missing or NaN)."""
        params, distributions = self.layout.params(candidate.arch)
        values = self._values(candidate)
        trial = create_trial(
            params=params,
            distributions=distributions,
            values=values,
            state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
            user_attrs={**self._attrs(candidate), "owner": self.owner},
        )
        self.study.add_trial(trial)

    def _values(self, candidate: Candidate) -> list[float] | None:
        values = [candidate.values.get(o.name, math.nan) for o in self.objectives]
        return values if all(math.isfinite(v) for v in values) else None

    def tag_running(self, trial: optuna.Trial) -> None:
        """Mark an asked trial with this process, so a killed run's leftovers can be found."""
        trial.set_user_attr("owner", self.owner)

    def finish(
        self, trial: optuna.Trial, candidate: Candidate, *, duplicate_of: str | None
    ) -> None:
        """Tell an asked trial its result: values when scored, PRUNED when rejected unscored."""
        attrs = self._attrs(candidate)
        if duplicate_of is not None:
            attrs["duplicate"] = True
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        values = self._values(candidate)
        if values is not None:
            self.study.tell(trial, values)
        elif (
            candidate.extra.get("screened")
            or candidate.extra.get("pending")
            or math.isfinite(candidate.violation)
        ):
            # rejected unscored (cheap constraint, screen) or another worker's to score
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)  # a metric could not be computed

    def fail_stale(self, live: set[str] | None = None) -> int:
        """Mark RUNNING trials of dead processes as FAIL; returns how many.

        Dead: a process of this host that no longer exists, or (with `live`, the workers of a
        shared study whose heartbeat is fresh) a worker not in `live`.
        """
        count = 0
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.user_attrs.get("owner") or {}
            pid, host, worker = owner.get("pid"), owner.get("host"), owner.get("worker")
            gone = host == self.host and pid is not None and not pid_alive(int(pid))
            if gone or (live is not None and worker is not None and worker not in live):
                self.study.tell(trial.number, state=TrialState.FAIL)
                count += 1
        return count

    def _scored_trials(self, *, fresh: bool) -> list[FrozenTrial]:
        states = (TrialState.COMPLETE, TrialState.FAIL)
        if not fresh or self.url is None:
            return self.study.get_trials(deepcopy=False, states=states)
        if self._uncached is None:  # Optuna's cache reads only trials newer than the last one
            self._uncached = _rdb_storage(self.url)
        study_id = self._uncached.get_study_id_from_name(self.study.study_name)
        return self._uncached.get_all_trials(study_id, deepcopy=False, states=states)

    def poll(self, *, fresh: bool = False) -> list[StoredEvaluation]:
        """Scored evaluations not returned by an earlier call, in trial order.

        FAIL trials count too when they carry metrics: a subnet whose metric could not be
        computed (`--skip-missing`) is not scored again on resume. `fresh` reads every trial
        from the database itself rather than through Optuna's cache (see `read_all`).
        """
        new = []
        for trial in self._scored_trials(fresh=fresh):
            if trial.number in self._seen_numbers:
                continue
            self._seen_numbers.add(trial.number)
            stored = _stored(trial)
            if stored is not None:
                new.append(stored)
        return new

    def read_all(self) -> list[StoredEvaluation]:
        """Every scored evaluation of the study, in trial order, read from the database
        itself: Optuna's cache reads only trials with ids above the last finished one it saw,
        and misses a trial whose transaction committed after a later one's."""
        found = (_stored(trial) for trial in self._scored_trials(fresh=True))
        return sorted((s for s in found if s is not None), key=lambda s: s.number)


def _stored(trial: FrozenTrial) -> StoredEvaluation | None:
    attrs = trial.user_attrs
    if not {"arch", "arch_id", "metrics"} <= set(attrs) or attrs.get("duplicate"):
        return None  # not a scored subnet (or a copy of one)
    values = {k: float(v) for k, v in attrs["metrics"].items()}
    violation = float(attrs.get("violation", 0.0))
    if not all(math.isfinite(v) for v in values.values()):
        violation = math.inf
    candidate = Candidate(attrs["arch"], attrs["arch_id"], values, violation)
    owner = attrs.get("owner") or {}
    return StoredEvaluation(trial.number, candidate, owner.get("pid"), owner.get("host"))


