"""Hardware-aware search: searchers, the evaluator, studies, hypervolume and outputs.

Importing this package registers the built-in searchers (`evolution`, `nsga2`, `optuna-tpe`,
`optuna-nsga2`, `random`). `nas.search.pipeline.run_searches` is what `nas search` runs: the
problems of each device (`nas.search.problems`), its search, stage record and files.
"""

from __future__ import annotations

from nas.search import evolution, nsga2, optuna_search  # noqa: F401  (registration)
from nas.search.base import (
    SEARCHERS,
    Candidate,
    Constraint,
    Objective,
    Searcher,
    create_searcher,
    non_dominated_sort,
    pareto_front,
    register_searcher,
)
from nas.search.evaluator import Evaluator
from nas.search.hypervolume import hypervolume
from nas.search.optimize import SearchResult, run_search

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
