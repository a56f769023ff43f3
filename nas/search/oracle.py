"""Tabular scoring (`--oracle FILE`): look subnets up in a table of measured metrics.

The table is JSONL, one `{"arch": ..., "<metric>": value, ...}` per line; `arch` may be in any
form the space's `normalize()` accepts (for `nb201`, the benchmark's strings). Search methods
can then be compared on tabular benchmarks at no training cost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import arch_id
from nas.config import read_user_jsonl
from nas.errors import ArtifactError, InvalidArchError, NasError
from nas.search.base import Direction, Objective
from search_spaces.base import SearchSpace


class OracleMissingError(NasError):
    """A subnet the oracle table does not contain."""


class Oracle:
    """A table of metrics keyed by `arch_id` of the normalised arch.

    Args:
        rows: records with an `arch` and numeric metrics.
        space: the space the archs belong to.
        skip_missing: score a missing arch as NaN (never on a front) instead of raising.
        source: where the rows came from, for messages.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        space: SearchSpace,
        *,
        skip_missing: bool = False,
        source: str = "oracle",
    ) -> None:
        self.space, self.skip_missing, self.source = space, skip_missing, source
        self.table: dict[str, dict[str, float]] = {}
        for index, row in enumerate(rows, start=1):
            if not isinstance(row, Mapping) or "arch" not in row:
                got = sorted(map(str, row)) if isinstance(row, Mapping) else type(row).__name__
                raise ArtifactError(
                    f"{source}: line {index}: expected an object with an 'arch' key, got {got}"
                )
            try:
                arch = space.normalize(row["arch"])
            except InvalidArchError as exc:
                raise ArtifactError(f"{source}: line {index}: {exc}") from None
            metrics = {k: float(v) for k, v in row.items() if k != "arch" and _is_number(v)}
            self.table[arch_id(arch)] = metrics
        if not self.table:
            raise ArtifactError(f"{source}: expected at least one row, got an empty table")
        self.metrics = sorted(set().union(*(m.keys() for m in self.table.values())))
        self.lookups: dict[str, int] = {}
        self.missing = 0

    @classmethod
    def load(cls, path: Path, space: SearchSpace, *, skip_missing: bool = False) -> Oracle:
        """Read a JSONL table; a torn or malformed line is an error naming the line."""
        lines = read_user_jsonl(path, what="oracle table", error=ArtifactError)
        rows = [row for _, row in lines]
        return cls(rows, space, skip_missing=skip_missing, source=str(path))

    def lookup(self, arch: Mapping[str, Any], metric: str) -> float:
        """The table's `metric` for `arch` (NaN when missing and `skip_missing`)."""
        self.lookups[metric] = self.lookups.get(metric, 0) + 1
        row = self.table.get(arch_id(arch))
        if row is None or metric not in row:
            if self.skip_missing:
                self.missing += 1
                return math.nan
            what = "subnet" if row is None else f"metric '{metric}' for subnet"
            raise OracleMissingError(
                f"{self.source}: expected every searched subnet in the table, got a {what} it "
                f"lacks ({json.dumps(dict(arch), sort_keys=True)}); "
                "pass --skip-missing to skip such subnets"
            )
        return row[metric]

    def objective(
        self, name: str, direction: Direction, *, cheap: bool, unit: str = "", delay: float = 0.0
    ) -> Objective:
        """An objective reading `name` from the table.

        `delay` seconds are slept per subnet looked up: a table then stands in for an
        expensive scorer (benchmarks of search machinery and workers).

        Raises:
            NasError: when no row has the metric `name`.
        """
        if name not in self.metrics:
            raise NasError(
                f"{self.source}: expected metric '{name}' in the table, got only "
                f"{', '.join(self.metrics)}; pick --objectives among them"
            )

        def evaluate(archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
            if delay > 0:
                time.sleep(delay * len(archs))
            return np.array([self.lookup(a, name) for a in archs], dtype=np.float64)

        return Objective(name, direction, evaluate, cheap=cheap, unit=unit)


def _is_number(value: Any) -> bool:
    """A metric value; NaN and infinities count as missing (JSON has neither)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
