"""The supernet's cell: every edge holds every candidate op; one op per edge runs (single path).

Layout: `edges[f"edge_{i}_{j}"][op]` is the ReLU-conv-BN of each convolution op on each edge,
the benchmark's own modules, so a subnet's weights are copies of them. The parameter-free ops
(skip, 3x3 average pool, none) have no module: they are computed once per source node.

The single-path forward computes exactly what the benchmark's per-edge cell computes (each
edge `op(node_j)`, node i the sum), faster:

* `none` edges are skipped (they add zero), never materialised, and so are the ops into a node
  that reaches the output only through `none` edges (a dead end). The reference computes those
  and multiplies them by zero: their weights get zero gradients, on which momentum and weight
  decay still act, and their BN statistics move. Here they get no gradient and keep their
  statistics (every subnet's statistics are recalibrated before it is evaluated anyway);
* each node is ReLU'd once for all its outgoing convolutions;
* the active convolutions of one kernel size that read the same node run as one convolution
  and one batch norm over their concatenated channels (`grouped.conv_bn_group`), then split;
* a node's pooling is computed once for all its outgoing pool edges;
* sums accumulate in place once a node owns its partial sum.

A DARTS-style mixed forward (issue 14) fits the same loop: per source node, every conv op of
every outgoing edge as one `conv_bn_group`, the pooled and the raw node once, weighted by the
edges' op weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.arch import Arch
from nas.fast_pool import mean_pool_3x3
from search_spaces.nb201.cells import CONV_KERNELS, EDGES, KEYS
from search_spaces.nb201.grouped import conv_bn_group
from search_spaces.nb201.ops import conv_op

CONV_OPS = tuple(CONV_KERNELS)
NODES = 4


@dataclass(frozen=True)
class SourceStep:
    """What one node feeds in the active arch: target nodes per op."""

    source: int
    convs: tuple[tuple[str, tuple[int, ...]], ...]  # (conv op, targets), non-empty only
    pools: tuple[int, ...]
    skips: tuple[int, ...]


def live_nodes(arch: Arch) -> set[int]:
    """Nodes whose value reaches the cell output through edges that are not `none`."""
    live = {NODES - 1}
    for j in range(NODES - 2, -1, -1):
        if any(arch[f"edge_{i}_{j}"] != "none" for i in live if i > j):
            live.add(j)
    return live


def single_path_plan(arch: Arch) -> tuple[SourceStep, ...]:
    """The active ops of `arch` grouped by source node, in node order; ops into a node that
    only feeds `none` edges (a dead end) are left out: they add exactly zero to the output."""
    live = live_nodes(arch)
    steps = []
    for j in range(NODES - 1):
        targets = {
            op: tuple(i for i, source in EDGES
                      if source == j and i in live and arch[f"edge_{i}_{j}"] == op)
            for op in (*CONV_OPS, "avg_pool_3x3", "skip_connect")
        }
        convs = tuple((op, targets[op]) for op in CONV_OPS if targets[op])
        steps.append(SourceStep(j, convs, targets["avg_pool_3x3"], targets["skip_connect"]))
    return tuple(steps)


class _NodeSums:
    """Partial sums of the nodes; adds in place into a sum this cell created itself."""

    def __init__(self, x: Tensor) -> None:
        self.values: list[Tensor | None] = [x] + [None] * (NODES - 1)
        self.owned = [False] * NODES

    def add(self, node: int, y: Tensor) -> None:
        before = self.values[node]
        if before is None:
            self.values[node] = y  # may alias another tensor: never modified in place
        elif self.owned[node] and before.dtype == torch.promote_types(before.dtype, y.dtype):
            before.add_(y)  # (under autocast a wider y must widen the sum, as `+` would)
        else:
            self.values[node] = before + y
            self.owned[node] = True


class SearchCell(nn.Module):
    """Every candidate op of every edge of a cell at `channels` channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.edges = nn.ModuleDict(
            {key: nn.ModuleDict({op: conv_op(op, channels) for op in CONV_OPS}) for key in KEYS}
        )
        self.plan: tuple[SourceStep, ...] = single_path_plan(dict.fromkeys(KEYS, "nor_conv_3x3"))

    def conv(self, node: int, source: int, op: str) -> nn.Sequential:
        """The ReLU-conv-BN of `op` on edge `source -> node`."""
        edge = cast(nn.ModuleDict, self.edges[f"edge_{node}_{source}"])
        return cast(nn.Sequential, edge[op])

    def forward(self, x: Tensor) -> Tensor:
        nodes = _NodeSums(x)
        for step in self.plan:
            source = nodes.values[step.source]
            if source is None:  # no edge reaches this node: it is zero
                if not step.convs:
                    continue  # pools and skips of zero add zero
                source = torch.zeros_like(x)  # BN(conv(0)) is not zero: compute it
            if step.convs:
                self._convs(source, step, nodes)
            if step.pools:
                pooled = mean_pool_3x3(source)
                for target in step.pools:
                    nodes.add(target, pooled)
            for target in step.skips:
                nodes.add(target, source)
        out = nodes.values[NODES - 1]
        return out if out is not None else torch.zeros_like(x)

    def _convs(self, source: Tensor, step: SourceStep, nodes: _NodeSums) -> None:
        relu = F.relu(source)
        for op, targets in step.convs:
            layers = [self.conv(target, step.source, op) for target in targets]
            for target, y in zip(targets, conv_bn_group(relu, layers), strict=True):
                nodes.add(target, y)
