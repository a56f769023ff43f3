"""Fixtures for search tests: the nb201 space with a synthetic oracle (cheap, deterministic)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nas.search.oracle import Oracle
from search_spaces.nb201 import NB201Space
from search_spaces.nb201.synthetic import synthetic_table


@pytest.fixture(scope="session")
def table() -> list[dict[str, Any]]:
    return synthetic_table(0)


@pytest.fixture
def space() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="session")
def base_oracle(table: list[dict[str, Any]]) -> Oracle:
    return Oracle(table, NB201Space())


@pytest.fixture
def oracle(base_oracle: Oracle) -> Oracle:
    """The session's oracle with fresh lookup counters (building it takes ~0.5 s)."""
    fresh = copy.copy(base_oracle)
    fresh.lookups, fresh.missing = {}, 0
    return fresh
