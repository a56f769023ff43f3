"""Fixtures of the ranking tests: the shared real data, when this checkout sits beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

# ../shared/data relative to the repository root (tests/nas/rank/conftest.py -> parents[3])
SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture
def nb201_csv() -> Path:
    """The NAS-Bench-201 accuracy table; skips when ../shared is absent (a fresh clone)."""
    path = SHARED_DATA / "nb201" / "nb201_accuracy.csv"
    if not path.is_file():
        pytest.skip(f"real NAS-Bench-201 table not found at {path} (needs ../shared/data)")
    return path
