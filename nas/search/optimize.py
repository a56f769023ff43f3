"""One search end to end: open the study, build evaluator and searcher, run, take the front."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nas.search.base import Candidate, Constraint, Objective, pareto_front
from nas.search.evaluator import Evaluator
from nas.search.screen import AccuracyScreen
from nas.search.searchers import create_searcher
from nas.search.study import StudyRecorder, open_study
from search_spaces.base import SearchSpace


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
    sync: bool = False,
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
        sync: re-read the study before scoring (several processes share it).
        on_use: called with each subnet the search uses and whether it was newly scored.
        on_score: called with each subnet as soon as it is newly scored (before `on_use`,
            which waits for the rest of its batch).
        screen: an online accuracy predictor that skips hopeless candidates' evaluation.
    """
    recorder = None
    if storage is not None:
        recorder = StudyRecorder(open_study(storage, study_name, objectives), space, objectives)
    evaluator = Evaluator(
        objectives,
        budget=budget,
        constraints=constraints,
        extra=extra,
        recorder=recorder,
        sync=sync,
        screen=screen,
    )
    if on_use is not None:
        evaluator.on_use.append(on_use)
    if on_score is not None:
        evaluator.on_score.append(on_score)
    searcher = create_searcher(algorithm, population=population)
    start = time.perf_counter()
    searcher.run(space, evaluator, seed=seed)
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
