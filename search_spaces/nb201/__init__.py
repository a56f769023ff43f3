"""NAS-Bench-201's cell space (`nb201`), a tabular benchmark space (no torch supernet)."""

from __future__ import annotations

from search_spaces.nb201.space import NB201Space, from_string, to_string

__all__ = ["NB201Space", "from_string", "to_string"]
