"""Optuna's samplers over any search space: `optuna-tpe`, `optuna-nsga2` and `random`.

Each subnet is drawn through `space.suggest(trial)` (one categorical param per choice) and
told back through the evaluator, which serves duplicates from the cache (told the cached
values and flagged `duplicate`, not counted against the budget) and PRUNEs trials whose arch
breaks a cheap constraint (no accuracy is computed for them). The study is the sampler's whole
state, so resuming or sharing a study across processes needs nothing more than its storage.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from nas.errors import NasError
from nas.search._registry import register_searcher
from nas.search.evaluator import Evaluator
from nas.search.study import StudyRecorder, open_study
from search_spaces.base import SearchSpace

MAX_MISSES = 2000  # rejected samples in a row, with nothing feasible yet, before giving up
SamplerFactory = Callable[[int, int], optuna.samplers.BaseSampler]


class OptunaSearcher:
    """Drives an Optuna sampler through ask/tell.

    Args:
        make_sampler: `(seed, population) -> sampler`.
        population: population size for population-based samplers (NSGA-II).
    """

    def __init__(self, make_sampler: SamplerFactory, *, population: int = 50) -> None:
        self.make_sampler = make_sampler
        self.population = population

    def run(self, space: SearchSpace, evaluator: Evaluator, *, seed: int) -> None:
        if evaluator.recorder is None:  # the sampler needs a study even when nothing is kept
            study = open_study(None, "search", evaluator.objectives)
            evaluator.recorder = StudyRecorder(study, space, evaluator.objectives)
        recorder = evaluator.recorder
        recorder.study.sampler = self.make_sampler(seed, self.population)
        recorder.fail_stale(evaluator.live_workers())
        evaluator.use_stored()
        misses = 0
        while not evaluator.done:
            trial = recorder.study.ask()
            recorder.tag_running(trial)
            arch = space.suggest(trial)
            candidate = evaluator.evaluate([arch], trials=[trial])[0]
            misses = 0 if candidate.arch_id in evaluator.used else misses + 1
            if misses >= MAX_MISSES and not evaluator.used:
                raise NasError(
                    f"expected feasible subnets, got none among {misses} sampled by "
                    f"{type(recorder.study.sampler).__name__} under constraints "
                    f"({'; '.join(c.describe() for c in evaluator.constraints)}); "
                    "relax the constraints"
                )
            if evaluator.shared:
                evaluator.use_stored()  # other workers' trials are this search's too


@register_searcher("optuna-tpe")
def optuna_tpe(*, population: int = 50) -> OptunaSearcher:
    """Optuna's TPE sampler (multi-objective TPE for two or more objectives)."""
    return OptunaSearcher(
        lambda seed, _: optuna.samplers.TPESampler(seed=seed, multivariate=True),
        population=population,
    )


@register_searcher("optuna-nsga2")
def optuna_nsga2(*, population: int = 50) -> OptunaSearcher:
    """Optuna's default NSGA-II sampler (the baseline of `bench/bench_search.py`)."""
    return OptunaSearcher(
        lambda seed, pop: optuna.samplers.NSGAIISampler(seed=seed, population_size=pop),
        population=population,
    )


@register_searcher("random")
def random_search(*, population: int = 50) -> OptunaSearcher:
    """Uniform random sampling through Optuna's RandomSampler."""
    return OptunaSearcher(
        lambda seed, _: optuna.samplers.RandomSampler(seed=seed), population=population
    )
