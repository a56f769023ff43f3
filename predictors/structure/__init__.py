"""Structural features of subnets (see `predictors.structure.base`); importing this package
registers the built-in describers (ofa-mbv3, ofa-resnet50, nb201)."""

from __future__ import annotations

from predictors.structure import nb201, ofa  # noqa: F401 - registration side effects
from predictors.structure.base import (
    DESCRIBERS,
    KeyTableDescriber,
    Op,
    StructureDescriber,
    describer_for,
)

__all__ = ["DESCRIBERS", "KeyTableDescriber", "Op", "StructureDescriber", "describer_for"]
