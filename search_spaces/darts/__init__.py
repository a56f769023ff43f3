"""The DARTS cell search space (`darts`): genotypes, evaluation network and search supernets."""

from __future__ import annotations

from search_spaces.darts.space import DartsSpace

__all__ = ["DartsSpace"]
