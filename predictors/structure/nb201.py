"""Structural features of NAS-Bench-201 cells: the operations that run, and those that matter.

Every cell of the network is the same, so a subnet's cost is set by how many of its 6 edges carry
each operation; but which of them *count* depends on the device's software. Frameworks that run
the graph as written (PyTorch on GPUs) execute every edge, `none` included (a multiply by zero).
Compilers that prune the graph (TFLite on phones and the Raspberry Pi, the FPGA/ASIC flows of
HW-NAS-Bench) drop every edge that is not on a path from the cell's input to its output, and a
cell whose output is cut off reduces the whole network to nearly nothing (0.003 ms on the Pixel 3
against 10 ms typical). So both sets are given, all edges and active edges (on an input-to-output
path of non-`none` edges), with a flag for the disconnected cells, and the model weighs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predictors.structure.base import DESCRIBERS, Op, StructureDescriber, op_names, ops_row
from search_spaces.base import SearchSpace

VERSION = "nb201/1"


def edge_ops(op: str, width: int, area: int) -> list[Op]:
    """Primitive operations of one edge operation at `width` channels on `area` pixels."""
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        k = 1 if op == "nor_conv_1x1" else 3
        return [Op("relu", 0, 2 * area * width),
                Op("conv" if k > 1 else "pw", k * k * width * width * area, 2 * area * width,
                   k * k * width * width),
                Op("bn", 0, 2 * area * width, 2 * width)]
    if op == "avg_pool_3x3":
        return [Op("pool", 0, 2 * area * width)]
    if op == "none":
        return [Op("scale", 0, 2 * area * width)]  # the benchmark's Zero op multiplies by 0
    return []  # skip_connect is the identity


def _stage_shapes(space: Any) -> list[tuple[int, int]]:
    return [(space.channels * 2**s, (space.image_size // 2**s) ** 2) for s in range(3)]


def op_rows(space: Any) -> np.ndarray:
    """`(5, S)`: the whole network's descriptor row for one edge carrying each operation."""
    from search_spaces.nb201.cells import OPS

    rows = []
    for op in OPS:
        ops = [o for width, area in _stage_shapes(space) for o in edge_ops(op, width, area)]
        rows.append(ops_row(ops) * space.cells_per_stage)
    return np.stack(rows)


def active_edges(ops: np.ndarray) -> np.ndarray:
    """`(n, 6)` bool: edges on a path from node 0 to node 3 through non-`none` edges.

    Args:
        ops: `(n, 6)` operation indexes in the space's edge order (0 is `none`).
    """
    from search_spaces.nb201.cells import EDGES

    live = ops != 0
    n = len(ops)
    reach = [np.ones(n, dtype=bool)] + [np.zeros(n, dtype=bool) for _ in range(3)]
    for e, (i, j) in enumerate(EDGES):  # edges are ordered by target node, sources first
        reach[i] |= live[:, e] & reach[j]
    leads = [np.zeros(n, dtype=bool) for _ in range(3)] + [np.ones(n, dtype=bool)]
    for e, (i, j) in reversed(list(enumerate(EDGES))):
        leads[j] |= live[:, e] & leads[i]
    return np.stack(
        [live[:, e] & reach[j] & leads[i] for e, (i, j) in enumerate(EDGES)], axis=1
    )


class NB201Describer(StructureDescriber):
    """All-edge and active-edge operation costs of NAS-Bench-201 cells, plus a cut-off flag."""

    def __init__(self, space: Any) -> None:
        from search_spaces.nb201.cells import EDGES, OPS

        self.n_edges, self.n_ops = len(EDGES), len(OPS)
        self.rows = op_rows(space)
        self.names = (
            tuple(f"all.{n}" for n in op_names()) + tuple(f"active.{n}" for n in op_names())
            + ("disconnected",)
        )
        self.version = VERSION

    def __call__(self, encoded: np.ndarray, counts: np.ndarray) -> np.ndarray:
        onehot = np.asarray(encoded, dtype=np.float64).reshape(-1, self.n_edges, self.n_ops)
        active = active_edges(onehot.argmax(axis=2))
        per_op_all = onehot.sum(axis=1)
        per_op_active = (onehot * active[:, :, None]).sum(axis=1)
        cut = np.asarray(~active.any(axis=1), dtype=np.float64)
        return np.concatenate(
            [per_op_all @ self.rows, per_op_active @ self.rows, cut[:, None]],
            axis=1,
        )


@DESCRIBERS.register("nb201")
def nb201_describer(space: SearchSpace, keys: Sequence[str]) -> NB201Describer:
    return NB201Describer(space)
