"""The weight-sharing NAS-Bench-201 network (`NB201Supernet`): single-path, one op per edge.

Every edge of every cell holds the weights of all its candidate operations (`SearchCell`);
`set_active(arch)` picks one op per edge, the same in every cell, and `forward` runs only those
(SPOS, Guo et al. 2020; the sandwich rule trains through the same call). The skeleton outside
the cells (stem, ResNet blocks, head) is shared by every subnet.

All batch norms are the benchmark's affine ones tracking running statistics: a subnet's
statistics are re-estimated for it anyway (BN recalibration resets and recomputes every
`BatchNorm2d`), and its affine weights are part of the parameters `space.complexity()` counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nas.arch import Arch
from nas.supernet.base import Supernet
from search_spaces.nb201.network import NB201Network
from search_spaces.nb201.search_cell import SearchCell, single_path_plan

if TYPE_CHECKING:
    from search_spaces.nb201.space import NB201Space


def subnet_state(state: dict[str, Any], arch: Arch) -> dict[str, Any]:
    """The supernet's state dict mapped onto the keys of `arch`'s static network.

    Cell edges are `cells.K.edges.EDGE.OP.REST` in the supernet and `cells.K.edges.EDGE.REST`
    in a subnet, which keeps only the op `arch` chose; every other key is the same in both.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) > 4 and parts[0] == "cells" and parts[2] == "edges":
            if arch[parts[3]] != parts[4]:
                continue
            key = ".".join(parts[:4] + parts[5:])
        out[key] = value
    return out


class NB201Supernet(Supernet):
    """The NAS-Bench-201 supernet of `space` (C, N, classes and input channels from it).

    The largest subnet (every edge `nor_conv_3x3`) is active after construction.
    """

    def __init__(self, space: NB201Space) -> None:
        super().__init__()
        space.check_network_size()
        self.space: NB201Space = space
        self.network = NB201Network(
            SearchCell,
            channels=space.channels,
            cells_per_stage=space.cells_per_stage,
            num_classes=space.num_classes,
            in_channels=space.in_channels,
        )
        self._active: dict[str, Any] = space.largest()

    def set_active(self, arch: Arch) -> None:
        canonical = self.space.normalize(arch)
        plan = single_path_plan(canonical)
        for cell in self.network.modules():
            if isinstance(cell, SearchCell):
                cell.plan = plan
        self._active = canonical

    def active(self) -> dict[str, Any]:
        return dict(self._active)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu":
            # CPU kernels of the 3x3 pools (3-5x) and of these small convolutions run faster
            # channels-last; the layout follows the input through every layer
            x = x.contiguous(memory_format=torch.channels_last)
        logits: Tensor = self.network(x)
        return logits

    def input_resolution(self, arch: Arch) -> int | None:
        # the network runs at any side divisible by 4, but complexity() counts MACs at this one
        return self.space.image_size

    def extract_subnet(self, arch: Arch) -> nn.Module:
        """`arch`'s static network (`NB201Network` of `StaticCell`s) with this supernet's
        weights and batch-norm statistics, on the same device and in the same mode."""
        canonical = self.space.normalize(arch)
        subnet = self.space.build_network(canonical)
        subnet.load_state_dict(subnet_state(self.network.state_dict(), canonical))
        device = next(self.parameters()).device
        return subnet.to(device).train(self.training)
