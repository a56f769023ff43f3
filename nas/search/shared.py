"""The evaluator of a worker sharing its study with others (`nas.search.claims`).

Same rules as `Evaluator` (constraints first, each subnet scored once, every result
recorded), with the study as the unit:

- the budget is the study's, counted in claims;
- a subnet is claimed just before it is scored; one claimed by another worker is left to it
  and comes back as a `pending` candidate, which searchers do not use;
- `take_foreign` hands the searcher the results other workers wrote since its last call (each
  generation of NSGA-II, each step of evolution), `await_foreign` waits for some;
- `settle` waits for every claim of the study to finish, scoring dead workers' claims in
  their place, then makes every scored subnet of the study the history: each worker ends
  with the front of all the study's trials.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from nas.search.base import Candidate, Objective
from nas.search.claims import Claim, StudyClaims
from nas.search.evaluator import Arch, Evaluator
from nas.search.study import StudyRecorder

logger = logging.getLogger(__name__)


class SharedEvaluator(Evaluator):
    """An `Evaluator` for one of several workers on a study.

    Args:
        objectives: what the search optimises.
        claims: this worker's claims on the study.
        recorder: the study (required: it is how workers see each other's results).
        **options: as for `Evaluator` (`budget` is the study's).
    """

    shared = True

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        claims: StudyClaims,
        recorder: StudyRecorder,
        **options: Any,
    ) -> None:
        self.claims = claims
        self._foreign: list[Candidate] = []
        self._numbers: dict[str, int] = {}  # trial number of each result read from the study
        self._final: list[Candidate] | None = None
        self._study = recorder  # as `recorder`, typed as present
        super().__init__(objectives, recorder=recorder, **options)
        self._claim_stored()

    # --- state -----------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return max(self.budget - self.claims.count(), 0)

    @property
    def history(self) -> list[Candidate]:
        """Before `settle`: what this worker used; after: every scored subnet of the study."""
        return super().history if self._final is None else list(self._final)

    def share(self, size: int) -> int:
        """`size / live workers`: together the workers make one generation of `size`."""
        return max(1, math.ceil(size / max(len(self.claims.live_workers()), 1)))

    def live_workers(self) -> set[str]:
        return self.claims.live_workers() | {self.claims.worker}

    def _poll(self, *, fresh: bool = False) -> None:
        for stored in self._study.poll(fresh=fresh):
            candidate = stored.candidate
            self._numbers.setdefault(candidate.arch_id, stored.number)
            if candidate.arch_id not in self.store:
                self.store[candidate.arch_id] = candidate
                self._foreign.append(candidate)
            self.pending.pop(candidate.arch_id, None)

    # --- other workers' results ------------------------------------------------------------
    def take_foreign(self) -> list[Candidate]:
        """Results of other workers (or earlier runs) not handed out yet, now used."""
        self._poll()
        foreign = [c for c in self._foreign if c.arch_id not in self.used]
        self._foreign.clear()
        for candidate in foreign:
            self._use(candidate, fresh=False)
        return foreign

    def await_foreign(self, *, poll_s: float = 0.2) -> list[Candidate]:
        """The other workers' next results, waited for (a worker that joins when the others
        hold every claim of a generation has nothing to start from); dead workers' claims
        are scored meanwhile. Empty once the budget is used up."""
        while True:
            found = self.take_foreign()
            if found or self.done:
                return found
            adopted = self._adopt_orphans()
            for candidate in adopted:
                self._use(candidate, fresh=True)
            if adopted:
                return adopted
            time.sleep(poll_s)

    # --- claims ----------------------------------------------------------------------------
    def _claim(
        self, archs: Sequence[Arch], ids: Sequence[str]
    ) -> tuple[Sequence[Arch], Sequence[str]]:
        kept: tuple[list[Arch], list[str]] = ([], [])
        for arch, aid in zip(archs, ids, strict=True):
            if self.claims.claim(aid, arch) is Claim.MINE:
                kept[0].append(arch)
                kept[1].append(aid)
            else:  # another worker's (or no slot left): not scored, not used
                self._set_pending(arch, aid)
        return kept

    def _finish_claim(self, arch: Arch, aid: str) -> bool:
        if self.claims.finish(aid):
            return True
        # this worker was silent too long and another one took the subnet over
        logger.warning("subnet %s was taken over by another worker: result dropped", aid)
        self._set_pending(arch, aid)
        return False

    def _set_pending(self, arch: Arch, aid: str) -> None:
        self.pending[aid] = Candidate(
            dict(arch), aid, self._cheap[aid], math.inf, extra={"pending": True}
        )

    def _claim_stored(self) -> None:
        """Count trials written without claims (a study searched alone before) as claims."""
        claimed = {aid for _, aid, _, _ in self.claims.pending()}
        for aid, candidate in self.store.items():
            if aid not in claimed:
                self.claims.claim(aid, candidate.arch, done=True)

    def _adopt_orphans(self) -> list[Candidate]:
        """Score the unfinished claims of dead workers (not done, or done without a trial:
        died between its two writes); returns the new results."""
        rows = self.claims.orphans()
        if any(row.done and row.arch_id not in self.store for row in rows):
            self._poll(fresh=True)  # the trial may be one a cached read skipped
        results = []
        for row in rows:
            orphan = None if row.done and row.arch_id in self.store else self.claims.take(row)
            if orphan is None:
                continue
            self._cheap_metrics([orphan.arch], [orphan.arch_id])
            self._score([orphan.arch], [orphan.arch_id], record=True, screen=False)
            if orphan.arch_id in self.store:
                results.append(self.store[orphan.arch_id])
        return results

    # --- the end ---------------------------------------------------------------------------
    def _unfinished(self) -> list[tuple[str, bool]]:
        return [
            (aid, done)
            for _, aid, _, done in self.claims.pending()
            if not done or aid not in self.store
        ]

    def settle(self, *, poll_s: float = 0.5) -> list[Candidate]:
        """Wait until every claim is finished, scoring dead workers' claims in their place;
        then every scored subnet of the study, in trial order, is the history."""
        while True:
            self._poll()
            unfinished = self._unfinished()
            if any(done for _, done in unfinished):
                # done without a result here: read everything again, since a cached read
                # skips trials committed out of id order (concurrent PostgreSQL writers)
                self._poll(fresh=True)
                unfinished = self._unfinished()
            if not unfinished:
                break
            if not self._adopt_orphans():
                time.sleep(poll_s)
        # every claim is finished and read here, and the study holds no result without a
        # claim: the results read are the whole study
        self._final = sorted(
            self.store.values(), key=lambda c: self._numbers.get(c.arch_id, math.inf)
        )
        for candidate in self._final:
            self._use(candidate, fresh=False)
        return self._final
