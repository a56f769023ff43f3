"""The built-in search algorithms, built by name (`evolution`, `nsga2`, `optuna-tpe`,
`optuna-nsga2`, `random`). Importing this module registers them."""

from __future__ import annotations

from typing import Any

import nas.search.evolution
import nas.search.nsga2
import nas.search.optuna_search  # noqa: F401  (the built-in searchers register on import)
from nas.search._registry import SEARCHERS, register_searcher
from nas.search.base import Searcher


def create_searcher(name: str, *, population: int = 50, **options: Any) -> Searcher:
    """Build the searcher registered as `name`; unknown names list the valid ones."""
    return SEARCHERS.get(name)(population=population, **options)


__all__ = ["SEARCHERS", "create_searcher", "register_searcher"]
