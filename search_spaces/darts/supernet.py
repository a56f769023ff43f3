"""The DARTS search network (`DartsSupernet`): every op on every edge, mixed by alphas.

Modes (`supernet.mode`, see `nas.supernet.differentiable`):
* `"softmax"`: DARTS, `softmax(alpha)` mixes all ops of an edge;
* `"gumbel"`: GDAS, one op per edge is sampled from a Gumbel-softmax (hard, straight-through):
  only that op is computed, so activations of one path per edge are kept in memory;
* `"rome"`: ROME, two inputs per node drawn by Gumbel-top-2 on the betas, one op per kept
  edge; only those run;
* `"fixed"`: the op weights in `supernet.fixed_weights` are used as given (DARTS-PT's
  perturbation masks);
* `"active"`: a discrete genotype set by `set_active()`: only its edges and ops run, pools
  without their search-time batch norm, so the output equals the extracted network's.

Partial channels (PC-DARTS, `partial_channels=K`): each edge's mixed op sees 1/K of the
channels, the rest bypasses it, then channels are shuffled; `edge_norm=True` adds PC-DARTS'
edge-normalisation weights `betas` (softmax over the inputs of each node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nas.arch import Arch
from nas.errors import ConfigError
from nas.supernet.differentiable import DifferentiableSupernet, MixWeights
from search_spaces.darts.counting import STEM_MULTIPLIER, CellPlan, cell_plans
from search_spaces.darts.genotypes import CONCAT, PRIMITIVES, STEPS, genotype_string
from search_spaces.darts.mixed import StateOps
from search_spaces.darts.ops import FactorizedReduce, ReLUConvBN, init_weights

if TYPE_CHECKING:
    from search_spaces.darts.space import DartsSpace

CELLS = ("normal", "reduce")

NUM_EDGES = sum(node + 2 for node in range(STEPS))  # 14


def edge_index(node: int, source: int) -> int:
    """Row of edge `source -> node` in the (14, 8) alpha matrix (DARTS' order)."""
    return sum(n + 2 for n in range(node)) + source


NODE_ROWS = tuple(tuple(edge_index(node, j) for j in range(node + 2)) for node in range(STEPS))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SearchCell(nn.Module):
    """A search cell: states 0..5, each state's outgoing edges computed by one `StateOps`."""

    def __init__(self, plan: CellPlan, partial: int, generator: torch.Generator) -> None:
        super().__init__()
        c = plan.channels
        self.reduction, self.partial, self.channels = plan.reduction, partial, c
        if plan.reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(plan.c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(plan.c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(plan.c_prev, c, 1, 1, 0, affine=False)
        self.op_channels = c // partial
        # targets[j]: nodes fed by state j; rows[j]: their rows in the alpha matrix
        self.targets = [list(range(max(0, j - 1), STEPS)) for j in range(STEPS + 1)]
        self.rows = [[edge_index(k, j) for k in self.targets[j]] for j in range(STEPS + 1)]
        self.states = nn.ModuleList(
            StateOps(len(self.targets[j]), self.op_channels,
                     2 if plan.reduction and j < 2 else 1, generator)
            for j in range(STEPS + 1)
        )

    def _split(self, h: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.partial == 1:
            return h, None
        rest = h[:, self.op_channels:]
        if stride == 2:
            rest = F.max_pool2d(rest, 2, 2)
        return h[:, : self.op_channels], rest

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, mix: MixWeights,
                pool_bn: bool = True) -> torch.Tensor:
        """Mix with `mix.ops` (14, 8); `mix.edges` (14,) scales edges (PC-DARTS betas).

        With `mix.hard` (14,) op indices, only that op per edge runs (GDAS, ROME single path).
        """
        weights, edge_weights, hard = mix.ops, mix.edges, mix.hard
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        mixed: list[torch.Tensor | None] = [None] * STEPS
        rest: list[torch.Tensor | None] = [None] * STEPS
        for j, module in enumerate(self.states):
            ops = cast(StateOps, module)
            part, bypass = self._split(states[j], ops.stride)
            rows = self.rows[j]
            w = weights[rows]
            if edge_weights is not None:
                w = w * edge_weights[rows].unsqueeze(1)
            if hard is not None:
                outs = self._edges_single(ops, part, w, hard[rows], pool_bn)
            else:
                outs = list(ops(part, w).unbind(1))
            for slot, node in enumerate(self.targets[j]):
                previous = mixed[node]
                mixed[node] = outs[slot] if previous is None else previous + outs[slot]
                if bypass is not None:
                    scaled = bypass if edge_weights is None else bypass * edge_weights[rows[slot]]
                    before = rest[node]
                    rest[node] = scaled if before is None else before + scaled
            if j >= 1:  # node j - 1 has now received all its edges
                states.append(self._finish(mixed[j - 1], rest[j - 1]))
        return torch.cat([states[i] for i in CONCAT], dim=1)

    def _finish(self, mixed: torch.Tensor | None, rest: torch.Tensor | None) -> torch.Tensor:
        assert mixed is not None
        if rest is None:
            return mixed
        return channel_shuffle(torch.cat([mixed, rest], dim=1), self.partial)

    @staticmethod
    def _edges_single(ops: StateOps, x: torch.Tensor, w: torch.Tensor,
                      hard: torch.Tensor, pool_bn: bool) -> list[torch.Tensor]:
        cache: dict[str, torch.Tensor] = {}
        outs = []
        for slot, op in enumerate(hard.tolist()):
            if op < 0:  # an edge ROME's topology dropped: its weights are 0, gradients flow
                outs.append(w[slot].sum())
                continue
            y = ops.single(x, slot, op, w[slot, op], cache, pool_bn=pool_bn)
            # GDAS' straight-through trick: the unchosen weights are 0 in value but pass the
            # gradient, so every alpha of the edge learns from this sample
            others = w[slot].sum() - w[slot, op]
            outs.append(y + others)
        return outs


class DartsSupernet(DifferentiableSupernet):
    """The DARTS search network for a `DartsSpace`.

    Args:
        space: the space (channels, layers, classes, image size).
        partial_channels: K of PC-DARTS (1 = every channel through the mixed ops).
        edge_norm: learn PC-DARTS' edge-normalisation betas.
        topology_inputs: ROME's topology: the betas pick this many inputs per node (2, as the
            evaluation network has).
        seed: initialisation of weights and alphas.
    """

    cell_types = CELLS
    op_names = PRIMITIVES
    node_rows = NODE_ROWS
    inputs_per_node = 2

    def __init__(self, space: DartsSpace, *, partial_channels: int = 1, edge_norm: bool = False,
                 topology_inputs: int | None = None, seed: int = 0) -> None:
        super().__init__()
        c = space.init_channels
        if partial_channels < 1 or c % (2 * partial_channels):
            raise ConfigError(
                f"partial_channels: expected K dividing init_channels/2 ({c // 2}), "
                f"got {partial_channels}"
            )
        if topology_inputs not in (None, 2):
            raise ConfigError(f"topology_inputs: a DARTS cell node has 2 inputs, got "
                              f"{topology_inputs}")
        generator = torch.Generator().manual_seed(seed)
        self.space: DartsSpace = space
        self.partial_channels = partial_channels
        self._active: dict[str, Any] | None = None
        stem_c = STEM_MULTIPLIER * c
        self.stem = nn.Sequential(
            nn.Conv2d(space.in_channels, stem_c, 3, padding=1, bias=False), nn.BatchNorm2d(stem_c)
        )
        plans = list(cell_plans(c, space.layers, space.image_size))
        self.cells = nn.ModuleList(SearchCell(p, partial_channels, generator) for p in plans)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(STEPS * plans[-1].channels, space.num_classes)
        init_weights(self, generator)  # stem, preprocessing, classifier: seeded too
        self.init_architecture(generator, seed=seed, edge_norm=edge_norm,
                               topology_inputs=topology_inputs)

    def _mix(self, cell: str) -> MixWeights:
        if self.mode != "active":
            return self.cell_weights(cell)
        assert self.fixed_weights is not None
        weights = self.fixed_weights[cell]
        # discrete: unselected edges run `none` (index 0) and contribute nothing
        mask = weights.sum(dim=1)
        return MixWeights(weights, mask if self.partial_channels > 1 else None,
                          weights.argmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = {name: self._mix(name) for name in CELLS}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            mix = cells["reduce" if cell.reduction else "normal"]
            s0, s1 = s1, cell(s0, s1, mix, self.mode != "active")
        logits: torch.Tensor = self.classifier(self.global_pooling(s1).flatten(1))
        return logits

    # ------------------------------------------------------------- genotypes
    def arch_from_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The DARTS genotype: per node the 2 strongest edges, each with its best non-none op.

        Edge strength is the largest non-none op weight (times the edge weight with PC-DARTS'
        edge normalisation), exactly as the DARTS and PC-DARTS repositories parse alphas.
        """
        result: dict[str, Any] = {}
        for cell in CELLS:
            result[cell] = parse_weights(weights[cell])
            result[f"{cell}_concat"] = list(CONCAT)
        return result

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        genotype = self.space.normalize(arch)
        return {cell: genotype_weights(genotype[cell]) for cell in CELLS}

    def arch_string(self, arch: Arch) -> str:
        return genotype_string(self.space.normalize(arch))

    def set_active(self, arch: Arch) -> None:
        """Run only `arch`'s edges and ops (weight 1), in mode "active"."""
        genotype = self.space.normalize(arch)
        device = self.alphas("normal").device
        self.fixed_weights = {cell: w.to(device) for cell, w in self.arch_weights(arch).items()}
        self.mode, self._active = "active", genotype

    def input_resolution(self, arch: Arch) -> int | None:
        return self.space.image_size

    def active(self) -> dict[str, Any]:
        return dict(self._active) if self._active is not None else self.derive()

    def extract_subnet(self, arch: Arch) -> nn.Module:
        """The evaluation network of `arch` at this supernet's width and depth.

        With K = 1 the weights (and BN statistics) are copied from the supernet, so in eval
        mode its output equals the supernet's with `set_active(arch)`. With partial channels
        the shapes differ: the network is returned freshly initialised, with a logged warning
        (`extract.build_eval_network(..., require_weights=True)` raises instead).
        """
        from search_spaces.darts.extract import build_eval_network

        net = build_eval_network(self, self.space.normalize(arch))
        return net.to(self.alphas("normal").device)

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        """A standalone op (random weights) for a `space.block_keys()` key, and its batch-1
        input shape: what `nas profile` times for the per-op latency table."""
        from search_spaces.darts.blocks import build_block

        module, shape = build_block(key)
        return module, shape


def parse_weights(weights: torch.Tensor) -> list[list[Any]]:
    """Genotype edges from a (14, 8) weight matrix, as `DartsSupernet.derive` describes."""
    none = PRIMITIVES.index("none")
    edges: list[list[Any]] = []
    for node in range(STEPS):
        start = edge_index(node, 0)
        block = weights[start: start + node + 2].clone()
        block[:, none] = -float("inf")
        strength = block.max(dim=1).values
        # stable: ties keep the lower input first, like Python's sorted()
        order = sorted(range(node + 2), key=lambda j: -float(strength[j]))[:2]
        for j in order:
            edges.append([PRIMITIVES[int(block[j].argmax())], j])
    return edges


def genotype_weights(edges: list[list[Any]]) -> torch.Tensor:
    """One-hot (14, 8) weights selecting a genotype cell's edges and ops."""
    weights = torch.zeros(NUM_EDGES, len(PRIMITIVES))
    for slot, (op, source) in enumerate(edges):
        weights[edge_index(slot // 2, int(source)), PRIMITIVES.index(op)] += 1.0
    return weights
