"""Hardware-aware search: searchers, the evaluator, studies, hypervolume and outputs.

Importing this package registers the built-in searchers (`evolution`, `nsga2`, `optuna-tpe`,
`optuna-nsga2`, `random`). `nas.search.pipeline.run_searches` is what `nas search` runs: the
problems of each device (`nas.search.problems`), its search, stage record and files. Several
workers share one study through `nas.search.claims` (atomic claims, study-wide budget,
heartbeats) and `nas.search.shared.SharedEvaluator`; `nas.search.workers` starts local ones.
"""

from __future__ import annotations

from nas.search.base import (
    Candidate,
    Constraint,
    Objective,
    Searcher,
    non_dominated_sort,
    pareto_front,
)
from nas.search.evaluator import Evaluator
from nas.search.hypervolume import hypervolume
from nas.search.optimize import SearchResult, run_search
from nas.search.searchers import SEARCHERS, create_searcher, register_searcher

__all__ = [
    "SEARCHERS",
    "Candidate",
    "Constraint",
    "Evaluator",
    "Objective",
    "SearchResult",
    "Searcher",
    "create_searcher",
    "hypervolume",
    "non_dominated_sort",
    "pareto_front",
    "register_searcher",
    "run_search",
]
