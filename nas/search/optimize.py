"""One search end to end: open the study, build evaluator and searcher, run, take the front."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError
from nas.search.base import Candidate, Constraint, Objective, pareto_front
from nas.search.claims import StudyClaims, enable_wal
from nas.search.evaluator import Evaluator
from nas.search.screen import AccuracyScreen
from nas.search.searchers import create_searcher
from nas.search.shared import SharedEvaluator
from nas.search.study import StudyRecorder, open_study
from search_spaces.base import SearchSpace

HEARTBEAT_S = 10.0  # a shared study's worker silent for 3 beats is dead; its claims are redone


@dataclass(frozen=True)
class SearchResult:
    """What a search produced.

    Attributes:
        history: every scored subnet this run used, in order (feasible or not).
        front: the feasible Pareto front of `history`.
        rejected: proposals rejected on cheap constraints (never scored).
        new_evaluations: subnets actually scored by this process (others came from the study).
        seconds: wall time of the search.
        screened: candidates the accuracy screen kept from evaluation.
    """

    history: list[Candidate]
    front: list[Candidate]
    rejected: int
    new_evaluations: int
    seconds: float
    screened: int = 0


def run_search(
    space: SearchSpace,
    objectives: Sequence[Objective],
    *,
    algorithm: str,
    budget: int,
    seed: int,
    population: int = 50,
    constraints: Sequence[Constraint] = (),
    extra: Sequence[Objective] = (),
    storage: str | None = None,
    study_name: str = "search",
    shared: bool = False,
    heartbeat: float = HEARTBEAT_S,
    on_use: Callable[[Candidate, bool], None] | None = None,
    on_score: Callable[[Candidate], None] | None = None,
    screen: AccuracyScreen | None = None,
) -> SearchResult:
    """Search `space` for the Pareto front of `objectives` under `constraints`.

    Args:
        space: any registered search space.
        objectives: what to optimise (see `Objective`).
        algorithm: a registered searcher name (`nsga2`, `evolution`, `optuna-tpe`, ...).
        budget: distinct subnets to score.
        seed: seeds the searcher; equal seeds and inputs give equal searches.
        population: population size of population-based searchers.
        constraints: bounds checked before scoring when their metric is cheap.
        extra: metrics computed for constraints and outputs, not optimised.
        storage: Optuna storage URL of the study, or None for no persistence.
        study_name: the study's name in `storage`.
        shared: several workers share the study (`nas.search.claims`): `budget` counts the
            whole study's scored subnets, each subnet is claimed before it is scored, and the
            result (history, front) covers every trial of the study once all are finished.
        heartbeat: seconds between a shared worker's heartbeats.
        on_use: called with each subnet the search uses and whether it was newly scored.
        on_score: called with each subnet as soon as it is newly scored (before `on_use`,
            which waits for the rest of its batch).
        screen: an online accuracy predictor that skips hopeless candidates' evaluation.
    """
    if shared and storage is None:
        raise ConfigError("a shared search expects a study storage URL, got none")
    recorder, claims = None, None
    if storage is not None:
        if shared:
            enable_wal(storage)
        study = open_study(storage, study_name, objectives)
        if shared:
            claims = StudyClaims(storage, study_name, budget=budget, interval=heartbeat, seed=seed)
        worker = claims.worker if claims is not None else None
        recorder = StudyRecorder(study, space, objectives, url=storage, worker=worker)
    options: dict[str, Any] = dict(
        budget=budget, constraints=constraints, extra=extra, screen=screen
    )
    start = time.perf_counter()
    try:
        evaluator = (
            SharedEvaluator(objectives, claims=claims, recorder=recorder, **options)
            if claims is not None and recorder is not None
            else Evaluator(objectives, recorder=recorder, **options)
        )
        if on_use is not None:
            evaluator.on_use.append(on_use)
        if on_score is not None:
            evaluator.on_score.append(on_score)
        searcher = create_searcher(algorithm, population=population)
        searcher.run(space, evaluator, seed=seed)
        if isinstance(evaluator, SharedEvaluator):
            evaluator.settle()
    finally:
        if claims is not None:
            claims.close()
    seconds = time.perf_counter() - start
    history = evaluator.history
    return SearchResult(
        history=history,
        front=pareto_front(history, objectives),
        rejected=len(evaluator.rejected),
        new_evaluations=evaluator.new_evaluations,
        seconds=seconds,
        screened=len(evaluator.screened),
    )
