"""Per-operation latency blocks of the DARTS space: one key per op on one edge shape.

A DARTS network's latency varies between genotypes only through the operations on the kept
edges: the stem, the cells' preprocessing and the classifier are the same for every genotype
(a lookup-table predictor's fitted overhead absorbs them). So a block is one candidate
operation at one edge shape, keyed `darts/<op>/c<channels>/s<input side>/x<stride>`; the
same keys index the tables of hardware-aware search (`nas.train.darts_latency`).

`nas profile --space darts` times every key of `block_key_universe` with `build_block` and a
subnet's lookup-table latency sums its `genotype_block_keys`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from nas.arch import Arch
from nas.errors import ConfigError
from search_spaces.darts.counting import cell_plans, edge_geometry
from search_spaces.darts.genotypes import CELL_OPS

EdgeShape = tuple[int, int, int]  # channels, input side, stride

_KEY = re.compile(r"^darts/(?P<op>[a-z0-9_]+)/c(?P<c>\d+)/s(?P<s>\d+)/x(?P<x>[12])$")


def op_key(op: str, channels: int, size: int, stride: int) -> str:
    """The key of `op` on an edge of `channels` at input side `size` with `stride`."""
    return f"darts/{op}/c{channels}/s{size}/x{stride}"


def parse_op_key(key: str) -> tuple[str, int, int, int]:
    """`(op, channels, size, stride)` of a key made by `op_key`."""
    match = _KEY.match(key)
    if match is None or match["op"] not in CELL_OPS:
        raise ConfigError(
            f"DARTS block key: expected darts/<op>/c<channels>/s<size>/x<1|2> with op in "
            f"{', '.join(CELL_OPS)}, got '{key}'"
        )
    return match["op"], int(match["c"]), int(match["s"]), int(match["x"])


def edge_shapes(init_channels: int, layers: int, image_size: int) -> list[EdgeShape]:
    """Every distinct edge shape of a network (search and evaluation stack cells alike)."""
    shapes: set[EdgeShape] = set()
    for plan in cell_plans(init_channels, layers, image_size):
        for source in (0, 2):  # inputs 0/1 share a geometry, as do the intermediate nodes
            stride, size = edge_geometry(plan, source)
            shapes.add((plan.channels, size, stride))
    return sorted(shapes)


def genotype_block_keys(
    arch: Arch, *, init_channels: int, layers: int, image_size: int
) -> list[str]:
    """The op keys a genotype's evaluation network runs, cell by cell (repeats included)."""
    keys: list[str] = []
    for plan in cell_plans(init_channels, layers, image_size):
        for op, source in arch["reduce" if plan.reduction else "normal"]:
            stride, size = edge_geometry(plan, int(source))
            keys.append(op_key(str(op), plan.channels, size, stride))
    return keys


def key_universe(
    *, init_channels: int, layers: int, image_sizes: Iterable[int]
) -> list[str]:
    """Every key `genotype_block_keys` can return at these input sides."""
    keys: dict[str, None] = {}
    for side in image_sizes:
        for channels, size, stride in edge_shapes(init_channels, layers, int(side)):
            for op in CELL_OPS:
                keys[op_key(op, channels, size, stride)] = None
    return list(keys)


def build_block(key: str) -> tuple[Any, tuple[int, int, int, int]]:
    """A standalone op module (random weights, as in the evaluation network) for `key`, and
    its batch-1 input shape."""
    from search_spaces.darts.ops import build_op

    op, channels, size, stride = parse_op_key(key)
    return build_op(op, channels, stride), (1, channels, size, size)
