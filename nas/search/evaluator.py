"""The evaluator: constraints first, each subnet scored once, every evaluation recorded.

Searchers only propose archs; the `Evaluator` decides what is actually computed:

1. an arch already scored (in this run, an earlier run of the same study, or by another process
   sharing the study) is served from the cache by `arch_id`: nothing is evaluated twice;
2. otherwise its cheap metrics (MACs, params, predicted latency) are computed and the
   constraints on them checked; an infeasible arch is rejected there and its expensive metrics
   (accuracy) are never computed;
3. the rest get their expensive metrics, then the remaining constraints; the result is
   recorded as a trial of the study.

Budget: the number of distinct scored subnets this run has *used* (served from cache or newly
evaluated). Counting cache hits too is what makes resuming exact: a deterministic searcher
replays its first steps from the study, sees the same values, takes the same decisions, and
only evaluates what the killed run had not finished.

Several workers on one study: `nas.search.shared.SharedEvaluator` fills in the hooks that do
nothing here (`share`, `take_foreign`, `await_foreign`, claiming before scoring).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import arch_id
from nas.errors import ConfigError
from nas.search.base import Candidate, Constraint, Objective

if TYPE_CHECKING:
    import optuna

    from nas.search.screen import AccuracyScreen
    from nas.search.study import StudyRecorder

Arch = Mapping[str, Any]
SLOW_S = 0.05  # an expensive scorer slower than this per subnet is called one subnet at a time


class Evaluator:
    """Scores archs for searchers; see the module docstring for the rules.

    Args:
        objectives: what the search optimises.
        constraints: bounds on objectives or on `extra` metrics.
        extra: metrics computed for constraints and outputs only (not optimised).
        budget: distinct scored subnets to use.
        recorder: where trials go (None: nowhere, e.g. benchmarks of the machinery).
        max_proposals: stop after this many proposals even if the budget is not used
            (a tiny or over-constrained space); default 100 * budget + 10,000.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        budget: int,
        constraints: Sequence[Constraint] = (),
        extra: Sequence[Objective] = (),
        recorder: StudyRecorder | None = None,
        max_proposals: int | None = None,
        screen: AccuracyScreen | None = None,
    ) -> None:
        if budget < 1:
            raise ConfigError(f"expected a search budget >= 1, got {budget}")
        self.objectives = list(objectives)
        self.metrics: dict[str, Objective] = {m.name: m for m in (*extra, *objectives)}
        for constraint in constraints:
            if constraint.metric not in self.metrics:
                raise ConfigError(
                    f"constraint on unknown metric '{constraint.metric}' "
                    f"(expected one of: {', '.join(sorted(self.metrics))})"
                )
        self.constraints = list(constraints)
        self.budget = budget
        self.recorder = recorder
        self.max_proposals = max_proposals if max_proposals is not None else 100 * budget + 10_000
        self.store: dict[str, Candidate] = {}
        self.used: dict[str, Candidate] = {}
        self.rejected: dict[str, Candidate] = {}
        self._cheap: dict[str, dict[str, float]] = {}
        self._id_memo: dict[int, tuple[Arch, str]] = {}
        self.proposals = 0
        self.new_evaluations = 0
        self.expensive_calls = 0
        self.on_use: list[Callable[[Candidate, bool], None]] = []
        # each subnet as soon as it is scored (a batch is used only when all of it is)
        self.on_score: list[Callable[[Candidate], None]] = []
        self.accuracy_screen = screen
        self._seconds_per_subnet = -1.0  # not timed yet
        self.screened: dict[str, Candidate] = {}
        self.pending: dict[str, Candidate] = {}  # another worker's to score (shared study)
        self._poll()

    # --- state -----------------------------------------------------------------------------
    shared = False  # several workers share the study (see `nas.search.shared`)

    @property
    def remaining(self) -> int:
        return max(self.budget - len(self.used), 0)

    @property
    def done(self) -> bool:
        return self.remaining == 0 or self.proposals >= self.max_proposals

    @property
    def history(self) -> list[Candidate]:
        """Scored candidates used by this run, in the order they were first used."""
        return list(self.used.values())

    # --- hooks of a shared study (nothing to do for a worker alone) ------------------------
    def share(self, size: int) -> int:
        """This worker's part of a batch of `size` (a generation): all of it when alone."""
        return size

    def take_foreign(self) -> list[Candidate]:
        """Other workers' results not handed out yet, now used: none when alone."""
        return []

    def await_foreign(self) -> list[Candidate]:
        """Other workers' next results, waited for: none when alone."""
        return []

    def live_workers(self) -> set[str] | None:
        """Ids of the workers alive on the study (None: no shared study)."""
        return None

    def _claim(
        self, archs: Sequence[Arch], ids: Sequence[str]
    ) -> tuple[Sequence[Arch], Sequence[str]]:
        """The archs of a chunk this worker may score now: all of them when alone."""
        return archs, ids

    def _finish_claim(self, arch: Arch, aid: str) -> bool:
        """Whether this worker's result for `aid` stands (always, when alone)."""
        return True

    def use_stored(self) -> None:
        """Count every stored evaluation as used (Optuna searchers: the study *is* the state)."""
        self._poll()
        for candidate in self.store.values():
            self._use(candidate, fresh=False)

    def _poll(self) -> None:
        if self.recorder is not None:
            for stored in self.recorder.poll():
                self.store.setdefault(stored.candidate.arch_id, stored.candidate)

    def _use(self, candidate: Candidate, *, fresh: bool) -> None:
        if candidate.arch_id not in self.used:
            self.used[candidate.arch_id] = candidate
            for callback in self.on_use:
                callback(candidate, fresh)

    def ids(self, archs: Sequence[Arch]) -> list[str]:
        """`arch_id`s, remembered per arch object between `screen` and `evaluate` (hashing
        canonical JSON is the machinery's largest cost per evaluation otherwise)."""
        ids = []
        for arch in archs:
            known = self._id_memo.get(id(arch))
            if known is None or known[0] is not arch:
                known = (arch, arch_id(arch))
                self._id_memo[id(arch)] = known
            ids.append(known[1])
        return ids

    # --- cheap stage -----------------------------------------------------------------------
    def _cheap_metrics(self, archs: Sequence[Arch], ids: Sequence[str]) -> None:
        """Fill `self._cheap` for archs not seen yet (batched per metric)."""
        todo = [i for i, aid in enumerate(ids) if aid not in self._cheap]
        if not todo:
            return
        names = [m.name for m in self.metrics.values() if m.cheap]
        columns = {n: self.metrics[n].evaluate([archs[i] for i in todo]) for n in names}
        for row, i in enumerate(todo):
            self._cheap[ids[i]] = {n: float(columns[n][row]) for n in names}

    def _violation(self, values: Mapping[str, float]) -> float:
        return sum(c.violation(values[c.metric]) for c in self.constraints if c.metric in values)

    def screen(self, archs: Sequence[Arch]) -> list[bool]:
        """Whether each arch passes the constraints on cheap metrics (nothing expensive runs)."""
        ids = self.ids(archs)
        self._cheap_metrics(archs, ids)
        verdicts = []
        for arch, aid in zip(archs, ids, strict=True):
            violation = self._violation(self._cheap[aid])
            if violation > 0 and aid not in self.rejected:
                self.rejected[aid] = Candidate(dict(arch), aid, self._cheap[aid], violation)
            verdicts.append(violation == 0)
        return verdicts

    # --- evaluation ------------------------------------------------------------------------
    def evaluate(
        self, archs: Sequence[Arch], *, trials: Sequence[optuna.Trial] | None = None
    ) -> list[Candidate]:
        """Score `archs` (cache first, cheap constraints next, expensive metrics last).

        Args:
            archs: canonical archs of the space.
            trials: for Optuna samplers, the asked trial of each arch; it is told the result
                (a duplicate is told the cached values, a rejected arch is PRUNED).

        Returns:
            One candidate per arch; rejected ones have only cheap metrics and a violation > 0.
        """
        self.proposals += len(archs)
        ids = self.ids(archs)
        self._id_memo.clear()  # screened archs are evaluated next or dropped
        if self.shared and any(aid not in self.store for aid in ids):
            self._poll()
        fresh = [i for i, aid in enumerate(ids) if aid not in self.store]
        self._cheap_metrics([archs[i] for i in fresh], [ids[i] for i in fresh])
        to_score: dict[str, int] = {}
        for i in fresh:
            values = self._cheap[ids[i]]
            violation = self._violation(values)
            if violation > 0 and ids[i] not in self.rejected:
                self.rejected[ids[i]] = Candidate(dict(archs[i]), ids[i], values, violation)
            elif violation == 0:
                to_score.setdefault(ids[i], i)
        self._score([archs[i] for i in to_score.values()], list(to_score), record=trials is None)
        results = []
        for i, aid in enumerate(ids):
            candidate = (
                self.store.get(aid)
                or self.rejected.get(aid)
                or self.screened.get(aid)
                or self.pending[aid]
            )
            scored_now = aid in self.store and aid in to_score and to_score[aid] == i
            duplicate = (aid in self.store or aid in self.pending) and not scored_now
            if trials is not None and self.recorder is not None:
                self.recorder.finish(trials[i], candidate, duplicate_of=aid if duplicate else None)
            if aid in self.store:
                self._use(candidate, fresh=scored_now)
            results.append(candidate)
        return results

    def _score(
        self, archs: Sequence[Arch], ids: Sequence[str], *, record: bool, screen: bool = True
    ) -> None:
        """Compute the expensive metrics of `archs` and store (and record) each result.

        Cheap scorers (oracles, predictors) get the whole batch in one call; once a scorer
        proves slow (> SLOW_S per subnet, a supernet evaluation), subnets go one at a time so
        each result is recorded as soon as it exists and a kill loses at most one evaluation.
        On a shared study each chunk is claimed just before it is scored: a worker holds no
        claim it is not working on, so the others never wait for its backlog.
        """
        if not archs:
            return
        if screen:
            archs, ids = self._screen(archs, ids)
        expensive = [m for m in self.metrics.values() if not m.cheap]
        start = 0
        while start < len(archs):
            # one subnet first to time the scorer, then everything at once if it is fast
            slow = self._seconds_per_subnet < 0 or self._seconds_per_subnet > SLOW_S
            stop = start + 1 if slow else len(archs)
            chunk, chunk_ids = self._claim(archs[start:stop], ids[start:stop])
            start = stop
            if not chunk:
                continue
            self.expensive_calls += len(chunk) if expensive else 0
            began = time.perf_counter()
            columns = {m.name: np.asarray(m.evaluate(chunk), dtype=np.float64) for m in expensive}
            self._seconds_per_subnet = (time.perf_counter() - began) / len(chunk)
            for row, (arch, aid) in enumerate(zip(chunk, chunk_ids, strict=True)):
                scored = {name: float(column[row]) for name, column in columns.items()}
                self._store(scored, arch, aid, record=record)
            if self.accuracy_screen is not None and self.accuracy_screen.metric in columns:
                self.accuracy_screen.observe(chunk, columns[self.accuracy_screen.metric])

    def _store(self, scored: dict[str, float], arch: Arch, aid: str, *, record: bool) -> None:
        values = {**self._cheap[aid], **scored}
        violation = self._violation(values)
        if any(math.isnan(values[o.name]) for o in self.objectives):
            violation = math.inf  # a metric that could not be computed never wins
        if not self._finish_claim(arch, aid):
            return
        candidate = Candidate(dict(arch), aid, values, violation)
        self.store[aid] = candidate
        self.new_evaluations += 1
        if self.recorder is not None and record:
            self.recorder.record(candidate)
        for callback in self.on_score:
            callback(candidate)

    def _screen(
        self, archs: Sequence[Arch], ids: Sequence[str]
    ) -> tuple[Sequence[Arch], Sequence[str]]:
        """Drop the archs the accuracy screen deems hopeless (kept in `self.screened`)."""
        if self.accuracy_screen is None or not archs:
            return archs, ids
        cheap = [self._cheap[aid] for aid in ids]
        keep = self.accuracy_screen.promising(
            archs, cheap, list(self.used.values()), self.objectives
        )
        for arch, aid, ok in zip(archs, ids, keep, strict=True):
            if not ok:  # not scored: no budget, no trial; a later batch may propose it again
                self.screened[aid] = Candidate(
                    dict(arch), aid, self._cheap[aid], math.inf, extra={"screened": True}
                )
        return (
            [a for a, ok in zip(archs, keep, strict=True) if ok],
            [i for i, ok in zip(ids, keep, strict=True) if ok],
        )
