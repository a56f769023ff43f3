"""NAS-Bench-201 cells (`nb201`): the space, its weight-sharing supernet, the string form."""

from __future__ import annotations

from search_spaces.nb201.cells import from_string, to_string
from search_spaces.nb201.space import NB201Space

__all__ = ["NB201Space", "from_string", "to_string"]
