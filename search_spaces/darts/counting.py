"""Exact parameter and MAC counts of the DARTS evaluation network, in pure python.

Counts follow `network.py` layer by layer: convolutions and batch-norm affine weights are
parameters (running statistics are not); MACs are the multiply-accumulates of convolutions and
the classifier at batch 1 (pooling, batch norm, ReLU and additions are not counted, as is usual
for DARTS-family papers). The auxiliary head is excluded, like the repository's
`count_parameters_in_MB`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nas.arch import Arch
from search_spaces.darts.genotypes import STEPS

STEM_MULTIPLIER = 3


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells: 1/3 and 2/3 of the depth, as in DARTS."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


@dataclass(frozen=True)
class CellPlan:
    """Shape facts of one cell of the network.

    Attributes:
        index: position of the cell.
        c_prev_prev, c_prev: channels of the two cell inputs.
        channels: channels of every node inside the cell (output is 4x this).
        reduction: whether this cell halves the resolution.
        reduction_prev: whether the previous cell did (input 0 is then twice as large).
        size: side of input 1 (and of input 0 after preprocessing).
    """

    index: int
    c_prev_prev: int
    c_prev: int
    channels: int
    reduction: bool
    reduction_prev: bool
    size: int

    @property
    def out_size(self) -> int:
        return self.size // 2 if self.reduction else self.size


def cell_plans(init_channels: int, layers: int, image_size: int) -> Iterator[CellPlan]:
    """The cells of a DARTS network (search or evaluation: the stacking is the same)."""

    c_curr = STEM_MULTIPLIER * init_channels
    c_pp, c_p, c_curr = c_curr, c_curr, init_channels
    size = image_size
    reduction_prev = False
    reductions = reduction_layers(layers)
    for index in range(layers):
        reduction = index in reductions
        if reduction:
            c_curr *= 2
        plan = CellPlan(index, c_pp, c_p, c_curr, reduction, reduction_prev, size)
        yield plan
        c_pp, c_p = c_p, STEPS * c_curr
        size = plan.out_size
        reduction_prev = reduction


def edge_geometry(plan: CellPlan, source: int) -> tuple[int, int]:
    """(stride, input side) of an edge leaving state `source` of cell `plan`.

    In a reduction cell only the two cell inputs are strided; intermediate nodes are already
    at the reduced size.
    """
    if plan.reduction:
        return (2, plan.size) if source < 2 else (1, plan.out_size)
    return 1, plan.size


def _conv(c_in: int, c_out: int, k: int, out_size: int, groups: int = 1) -> tuple[int, int]:
    weights = c_out * (c_in // groups) * k * k
    return weights, weights * out_size * out_size


def _bn(c: int) -> tuple[int, int]:
    return 2 * c, 0


def _sum(*parts: tuple[int, int]) -> tuple[int, int]:
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def op_cost(op: str, c: int, size: int, stride: int) -> tuple[int, int]:
    """(params, macs) of one cell operation on `c` channels at input side `size`."""
    out = size // stride
    if op in ("max_pool_3x3", "avg_pool_3x3", "none"):
        return 0, 0
    if op == "skip_connect":
        return (0, 0) if stride == 1 else factorized_reduce_cost(c, c, size)
    kernel = int(op[-1])
    if op.startswith("sep_conv"):
        first = _sum(_conv(c, c, kernel, out, groups=c), _conv(c, c, 1, out), _bn(c))
        second = _sum(_conv(c, c, kernel, out, groups=c), _conv(c, c, 1, out), _bn(c))
        return _sum(first, second)
    if op.startswith("dil_conv"):
        return _sum(_conv(c, c, kernel, out, groups=c), _conv(c, c, 1, out), _bn(c))
    raise ValueError(f"unknown DARTS op {op}")


def factorized_reduce_cost(c_in: int, c_out: int, size: int) -> tuple[int, int]:
    half = _conv(c_in, c_out // 2, 1, size // 2)
    return _sum(half, half, _bn(c_out))


def relu_conv_bn_cost(c_in: int, c_out: int, size: int) -> tuple[int, int]:
    return _sum(_conv(c_in, c_out, 1, size), _bn(c_out))


def cell_cost(genotype: Arch, plan: CellPlan) -> tuple[int, int]:
    """(params, macs) of one evaluation cell (preprocessing included)."""
    c = plan.channels
    if plan.reduction_prev:
        pre0 = factorized_reduce_cost(plan.c_prev_prev, c, plan.size * 2)
    else:
        pre0 = relu_conv_bn_cost(plan.c_prev_prev, c, plan.size)
    parts = [pre0, relu_conv_bn_cost(plan.c_prev, c, plan.size)]
    edges = genotype["reduce" if plan.reduction else "normal"]
    for op, source in edges:
        stride, size = edge_geometry(plan, int(source))
        parts.append(op_cost(op, c, size, stride))
    return _sum(*parts)


def count_network(
    genotype: Arch,
    *,
    init_channels: int,
    layers: int,
    num_classes: int,
    in_channels: int,
    image_size: int,
) -> tuple[int, int]:
    """(params, macs) of `NetworkCIFAR(genotype)` without the auxiliary head."""
    stem_c = STEM_MULTIPLIER * init_channels
    parts = [_conv(in_channels, stem_c, 3, image_size), _bn(stem_c)]
    c_last = stem_c
    for plan in cell_plans(init_channels, layers, image_size):
        parts.append(cell_cost(genotype, plan))
        c_last = STEPS * plan.channels
    parts.append((c_last * num_classes + num_classes, c_last * num_classes))
    return _sum(*parts)


def cell_summary(init_channels: int, layers: int, image_size: int) -> list[dict[str, Any]]:
    """JSON-able list of the cells' shapes (for `describe()` and the latency table)."""
    return [
        {"index": p.index, "channels": p.channels, "size": p.size, "reduction": p.reduction}
        for p in cell_plans(init_channels, layers, image_size)
    ]
