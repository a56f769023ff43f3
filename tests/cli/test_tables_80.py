"""Tables at 80 columns (a pipe, CI logs): whole ids and paths, nothing cropped at the edge."""

from __future__ import annotations

import io

from rich.console import Console

from nas.commands._search_view import front_table
from nas.search.base import Candidate, Objective


def _render(table: object) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(table)
    return out.getvalue().splitlines()


def test_a_front_table_fits_80_columns_with_whole_arch_ids() -> None:
    objectives = [Objective("top1", "maximize", lambda a: a),
                  Objective("latency_ms", "minimize", lambda a: a)]
    values = {"top1": 73.33, "latency_ms": 12.986, "macs": 3.98e6, "params": 3.96e6}
    front = [Candidate({"depth": [2] * 5}, f"37955ed54bb{i}", values, 0.0) for i in range(3)]
    lines = _render(front_table("Pareto front: quickstart / quickstart (3 of 24 scored)", front,
                                objectives, {f"37955ed54bb{i}": 12.0 for i in range(3)}))
    assert max(len(line) for line in lines) <= 80
    assert all(any(f"37955ed54bb{i}" in line for line in lines) for i in range(3))
    assert lines[-1].startswith("└") and lines[-1].endswith("┘")  # the border is not cropped
