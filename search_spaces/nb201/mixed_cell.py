"""The DARTS-style forward of a `SearchCell`: every edge's ops weighted by architecture weights.

`mixed_cell_forward(cell, x, mix)` computes, for every node i, `sum_j sum_op w[(i, j), op] *
op(node_j)` with the cell's own per-edge weights, following the single path's loop (per source
node, in node order):

* every convolution op of every outgoing edge of a node (softmax mode) or the sampled ones
  (Gumbel modes) run as one grouped convolution and batch norm per kernel size
  (`grouped.conv_bn_group`), the edge weights folded into the batch norms' affine weights;
* the node is ReLU'd once and pooled once for all its outgoing edges;
* `none` is never computed (its weight still gets its gradient through the softmax); in the
  sampling modes an edge adds the 0-valued weights of the ops it did not run, GDAS'
  straight-through trick, so every weight of the edge learns from the sample.

Partial channels (PC-DARTS, `partial` K > 1): the cell's ops are built at C / K channels; the
first C / K channels of a node go through the ops, the rest bypass them, each edge's output is
weighted by its edge weight, and a finished node is channel-shuffled. Since every edge into a
node is shuffled alike, the node's edges are summed first and shuffled once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nas.fast_pool import mean_pool_3x3
from nas.supernet.differentiable import MixWeights
from search_spaces.darts.supernet import channel_shuffle
from search_spaces.nb201.cells import EDGES, OPS
from search_spaces.nb201.grouped import conv_bn_group
from search_spaces.nb201.search_cell import CONV_OPS, NODES, SearchCell, _NodeSums

POOL, SKIP = OPS.index("avg_pool_3x3"), OPS.index("skip_connect")
# (row, target) of the edges leaving each source node
OUTGOING = tuple(tuple((row, i) for row, (i, j) in enumerate(EDGES) if j == source)
                 for source in range(NODES - 1))


def _mixed_edges(cell: SearchCell, source: int, x: Tensor, w: Tensor, nodes: _NodeSums) -> None:
    """Every op of every edge leaving `source` (node value `x`), weighted by `w`'s rows."""
    rows = [row for row, _ in OUTGOING[source]]
    targets = [i for _, i in OUTGOING[source]]
    relu = F.relu(x)
    for op in CONV_OPS:
        scale = w[rows, OPS.index(op)].repeat_interleave(cell.channels)
        layers = [cell.conv(i, source, op) for i in targets]
        for i, y in zip(targets, conv_bn_group(relu, layers, scale), strict=True):
            nodes.add(i, y)
    pooled = mean_pool_3x3(x)
    for row, i in OUTGOING[source]:
        nodes.add(i, w[row, POOL] * pooled + w[row, SKIP] * x)


def _sampled_edges(
    cell: SearchCell, source: int, x: Tensor, w: Tensor, hard: list[int], nodes: _NodeSums,
    extra: list[Tensor | None],
) -> None:
    """The one sampled op of each edge leaving `source`; the straight-through terms (0-d)
    go to `extra`, added to each node once it is complete."""
    chosen = [(row, i, hard[row]) for row, i in OUTGOING[source]]
    relu = F.relu(x) if any(OPS[op] in CONV_OPS for _, _, op in chosen if op >= 0) else None
    for op in CONV_OPS:
        picked = [(row, i) for row, i, h in chosen if h == OPS.index(op)]
        if relu is None or not picked:
            continue
        scale = w[[row for row, _ in picked], OPS.index(op)].repeat_interleave(cell.channels)
        layers = [cell.conv(i, source, op) for _, i in picked]
        for (_, i), y in zip(picked, conv_bn_group(relu, layers, scale), strict=True):
            nodes.add(i, y)
    pooled = mean_pool_3x3(x) if any(h == POOL for _, _, h in chosen) else None
    for row, i, h in chosen:
        if h == POOL:
            assert pooled is not None
            nodes.add(i, w[row, POOL] * pooled)
        elif h == SKIP:
            nodes.add(i, w[row, SKIP] * x)
    for row, i, h in chosen:  # 0 in value: the gradient of the weights not run
        term = w[row].sum() - w[row, h] if h >= 0 else w[row].sum()
        before = extra[i]
        extra[i] = term if before is None else before + term


def mixed_cell_forward(cell: SearchCell, x: Tensor, mix: MixWeights, partial: int = 1) -> Tensor:
    """The cell's output for input `x` with the ops weighted as `mix` says (see the module
    docstring); `mix.ops` is `(6, 5)`, rows in `EDGES` order, columns in `OPS` order."""
    w = mix.ops if mix.edges is None else mix.ops * mix.edges.unsqueeze(1)
    hard = None if mix.hard is None else [int(h) for h in mix.hard.tolist()]
    ops_in = x if partial == 1 else x[:, : cell.channels]
    nodes = _NodeSums(ops_in)
    rest: list[Tensor | None] = [None] * NODES
    extra: list[Tensor | None] = [None] * NODES
    values: list[Tensor] = [x]
    for source in range(NODES - 1):
        full = values[source]
        part = full if partial == 1 else full[:, : cell.channels]
        if hard is None:
            _mixed_edges(cell, source, part, w, nodes)
        else:
            _sampled_edges(cell, source, part, w, hard, nodes, extra)
        if partial > 1:
            for row, i in OUTGOING[source]:
                bypass = full[:, cell.channels:]
                scaled = bypass if mix.edges is None else bypass * mix.edges[row]
                before = rest[i]
                rest[i] = scaled if before is None else before + scaled
        node = source + 1
        values.append(_finish(nodes.values[node], extra[node], rest[node], part, partial))
    return values[-1]


def _finish(mixed: Tensor | None, extra: Tensor | None, rest: Tensor | None, like: Tensor,
            partial: int) -> Tensor:
    """A node's value from its summed edges (zero when no op reached it)."""
    if mixed is None:
        mixed = torch.zeros_like(like)
    if extra is not None:
        mixed = mixed + extra
    if rest is None:
        return mixed
    return channel_shuffle(torch.cat([mixed, rest], dim=1), partial)
