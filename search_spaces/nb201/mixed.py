"""The NAS-Bench-201 supernet searched by DARTS-family methods: `NB201MixedSupernet`.

It is `NB201Supernet` (the same per-edge weights and state-dict keys; mode "active" is the
single path, unchanged) with the architecture parameters of `nas.supernet.differentiable`: one cell
type ("cell": NB201 repeats one cell through the network), `alphas_cell` `(6, 5)` over the
benchmark's ops in `OPS` order (edges in `KEYS` order) and `betas_cell` `(6,)`. The other
modes run `mixed_cell.mixed_cell_forward` in every cell.

`derive()` keeps, per edge, the op of largest alpha, `none` included: in NAS-Bench-201 `none`
is an operation like the others (the benchmark's DARTS reads its alphas this way). With ROME's
topology (`topology_inputs`, ROME's Gumbel-top-2), a node keeps its 2 incoming edges of
largest beta (node 3 drops one of its 3; nodes 1 and 2 keep theirs) and a dropped edge is
`none`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nas.arch import Arch
from nas.errors import ConfigError
from nas.supernet.differentiable import DifferentiableSupernet, MixWeights
from search_spaces.darts.ops import init_weights
from search_spaces.nb201.cells import EDGES, KEYS, OPS, to_string
from search_spaces.nb201.mixed_cell import mixed_cell_forward
from search_spaces.nb201.network import NB201Network
from search_spaces.nb201.search_cell import SearchCell
from search_spaces.nb201.supernet import NB201Supernet

if TYPE_CHECKING:
    from search_spaces.nb201.space import NB201Space

logger = logging.getLogger(__name__)
# alpha rows of each node's incoming edges (KEYS order: edge_1_0, edge_2_0, edge_2_1, ...)
NODE_ROWS = tuple(tuple(row for row, (i, _) in enumerate(EDGES) if i == node)
                  for node in (1, 2, 3))


class NB201MixedSupernet(NB201Supernet, DifferentiableSupernet):
    """The NB201 supernet of `space` with architecture parameters (see the module docstring).

    Args:
        space: the space (C, N, classes, image size).
        partial_channels: K of PC-DARTS; the cells' ops then work on C / K channels (K must
            divide C), so their weights no longer fit a subnet.
        edge_norm: PC-DARTS' edge-normalisation betas.
        topology_inputs: ROME's topology: inputs each node keeps (2).
        seed: initialisation of weights and architecture parameters.
    """

    cell_types = ("cell",)
    op_names = OPS
    node_rows = NODE_ROWS
    inputs_per_node = None

    def __init__(self, space: NB201Space, *, partial_channels: int = 1, edge_norm: bool = False,
                 topology_inputs: int | None = None, seed: int = 0) -> None:
        super().__init__(space)
        if partial_channels < 1 or space.channels % partial_channels:
            raise ConfigError(f"partial_channels: expected K dividing the nb201 channels "
                              f"({space.channels}), got {partial_channels}")
        if topology_inputs is not None and topology_inputs < 1:
            raise ConfigError(f"topology_inputs: expected >= 1, got {topology_inputs}")
        self.partial_channels = partial_channels
        if partial_channels > 1:
            self.network = NB201Network(
                lambda c: SearchCell(c // partial_channels), channels=space.channels,
                cells_per_stage=space.cells_per_stage, num_classes=space.num_classes,
                in_channels=space.in_channels)
        generator = torch.Generator().manual_seed(seed)
        init_weights(self, generator)
        self.init_architecture(generator, seed=seed, edge_norm=edge_norm,
                               topology_inputs=topology_inputs)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "active" and self.partial_channels == 1:
            return super().forward(x)  # the single path
        mix = self.cell_weights("cell") if self.mode != "active" else self._active_mix()
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        net = self.network
        x = net.stem(x)
        for cell in net.cells:
            if isinstance(cell, SearchCell):
                x = mixed_cell_forward(cell, x, mix, self.partial_channels)
            else:
                x = cell(x)
        return net.head(x)

    def _active_mix(self) -> MixWeights:
        assert self.fixed_weights is not None
        return MixWeights(self.fixed_weights["cell"])

    def set_active(self, arch: Arch) -> None:
        """Run only `arch`'s ops: the single path (with partial channels, the mixed forward
        with one-hot weights)."""
        super().set_active(arch)
        device = self.alphas("cell").device
        self.fixed_weights = {cell: w.to(device) for cell, w in self.arch_weights(arch).items()}
        self.mode = "active"

    def extract_subnet(self, arch: Arch) -> nn.Module:
        """`arch`'s static network with this supernet's weights; with partial channels the
        shapes differ and the network is freshly initialised (a warning says so)."""
        if self.partial_channels == 1:
            return super().extract_subnet(arch)
        logger.warning("nb201 supernet with partial channels (K=%d): its op weights do not fit "
                       "the subnet, which is freshly initialised", self.partial_channels)
        device = self.alphas("cell").device
        return self.space.build_network(arch).to(device).train(self.training)

    # ------------------------------------------------------------- subnets
    def arch_from_weights(self, weights: dict[str, Tensor]) -> dict[str, Any]:
        """Per edge the op of largest weight (`none` for a row of zeros)."""
        rows = weights["cell"]
        return {key: OPS[int(rows[row].argmax())] if bool(rows[row].any()) else "none"
                for row, key in enumerate(KEYS)}

    def arch_weights(self, arch: Arch) -> dict[str, Tensor]:
        canonical = self.space.normalize(arch)
        weights = torch.zeros(len(KEYS), len(OPS))
        for row, key in enumerate(KEYS):
            weights[row, OPS.index(canonical[key])] = 1.0
        return {"cell": weights}

    def arch_string(self, arch: Arch) -> str:
        return to_string(self.space.normalize(arch))
