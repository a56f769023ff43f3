"""The NAS-Bench-201 network: the macro skeleton around a cell, and the static cell of one arch.

`NB201Network` is the benchmark's skeleton (stem 3x3 conv + BN; three stages of N cells at C,
2C and 4C channels joined by stride-2 ResNet blocks; BN-ReLU, global average pooling, linear
classifier) around whatever cell module `make_cell(channels)` builds: the supernet puts its
search cells in it, a subnet (`extract_subnet`, `space.build_network`) its `StaticCell`s. Both
therefore share every state-dict key outside the cells.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nas.arch import Arch
from search_spaces.nb201.cells import EDGES
from search_spaces.nb201.ops import ResNetBasicBlock, build_op


def stage_layout(channels: int, cells_per_stage: int) -> list[tuple[int, int]]:
    """`(c_in, c_out)` of every layer after the stem: a cell when equal, else a ResNet block."""
    layers: list[tuple[int, int]] = []
    for stage in range(3):
        width = channels * 2**stage
        if stage > 0:
            layers.append((width // 2, width))
        layers += [(width, width)] * cells_per_stage
    return layers


class NB201Network(nn.Module):
    """The benchmark's network with `make_cell(channels)` as its cells.

    Args:
        make_cell: builds one cell at the given channel count (input and output alike).
        channels: C, channels of the first stage.
        cells_per_stage: N.
        num_classes: classifier outputs.
        in_channels: image channels.
    """

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        *,
        channels: int,
        cells_per_stage: int,
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.cells = nn.ModuleList(
            make_cell(c_out) if c_in == c_out else ResNetBasicBlock(c_in, c_out)
            for c_in, c_out in stage_layout(channels, cells_per_stage)
        )
        last = channels * 4
        self.lastact = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.head(x)

    def head(self, x: Tensor) -> Tensor:
        """The logits of the last stage's features (BN-ReLU, pooling, classifier)."""
        logits: Tensor = self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
        return logits


class StaticCell(nn.Module):
    """One arch's cell: only its operations, `none` edges dropped; node i sums its inputs.

    Edges run grouped by source node, so each node is complete before it is read. A node that
    no edge reaches is zero (as the benchmark's `none` edges make it); convolutions reading it
    still add their batch norm's output, exactly as in the benchmark's network.
    """

    def __init__(self, arch: Arch, channels: int) -> None:
        super().__init__()
        edges = sorted(EDGES, key=lambda edge: (edge[1], edge[0]))
        kept = [(i, j) for i, j in edges if arch[f"edge_{i}_{j}"] != "none"]
        ops = {f"edge_{i}_{j}": build_op(arch[f"edge_{i}_{j}"], channels) for i, j in kept}
        self.edges = nn.ModuleDict({key: op for key, op in ops.items() if op is not None})
        self.targets: list[int] = [i for i, _ in kept]
        self.sources: list[int] = [j for _, j in kept]

    def forward(self, x: Tensor) -> Tensor:
        nodes: list[Tensor | None] = [x, None, None, None]
        k = 0
        for op in self.edges.values():
            source = nodes[self.sources[k]]
            if source is None:
                source = torch.zeros_like(x)
            y = op(source)
            before = nodes[self.targets[k]]
            nodes[self.targets[k]] = y if before is None else before + y
            k += 1
        out = nodes[3]
        if out is None:
            return torch.zeros_like(x)
        return out
