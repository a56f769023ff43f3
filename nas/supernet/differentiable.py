"""The interface of a supernet that DARTS-family methods search: `DifferentiableSupernet`.

A cell is a DAG whose edges each carry every candidate operation; architecture parameters weigh
them. Every space with such a supernet (DARTS cells, NAS-Bench-201 cells) lays them out alike:

* per cell type (`cell_types`: the DARTS space has "normal" and "reduce", NB201 one "cell"),
  `alphas_<cell>`, an `(edges, ops)` matrix of operation logits (columns in `op_names` order,
  rows grouped by target node as `node_rows` says), and `betas_<cell>`, one logit per edge:
  PC-DARTS' edge normalisation (`edge_norm`) or ROME's topology (`topology_inputs`);
* `mode` picks how a forward pass weighs the operations:

  - "softmax": `softmax(alpha)` mixes every op of an edge (DARTS);
  - "gumbel": one op per edge, drawn from a Gumbel-softmax (hard, straight-through: GDAS);
  - "rome": per node `topology_inputs` incoming edges drawn by Gumbel-top-k on the betas,
    one op per kept edge drawn by Gumbel-max over the ops other than `none` (ROME); dropped
    edges are not computed;
  - "fixed": `fixed_weights` as given (DARTS-PT's perturbation masks);
  - "active": one discrete subnet set by `set_active()`.

Lifecycle: a trainer sets `mode` (and `tau`, the Gumbel temperature, per epoch), optimises
`weight_parameters()` and `arch_parameters()` with separate optimizers, and calls `derive()`
for the subnet the parameters point to. Random draws come from `gumbel_generator` only (its
state belongs in checkpoints).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.arch import Arch
from nas.errors import ConfigError
from nas.supernet.base import Supernet

MODES = ("softmax", "gumbel", "rome", "fixed", "active")
SKIP = "skip_connect"


@dataclass(frozen=True)
class MixWeights:
    """How one cell type weighs its operations in a forward pass.

    Attributes:
        ops: `(edges, ops)` weight of every op of every edge.
        edges: `(edges,)` factor of each edge's output (PC-DARTS' edge normalisation) or None.
        hard: `(edges,)` the one op index each edge runs (sampling modes; -1: the edge is not
            computed, it only adds its 0-valued weights so their gradients flow), or None: every
            op with a weight runs.
    """

    ops: torch.Tensor
    edges: torch.Tensor | None = None
    hard: torch.Tensor | None = None


def gumbel_noise(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise drawn from `generator` (CPU), as GDAS draws it."""
    uniform = torch.rand(tuple(shape), generator=generator)
    exponential = (-torch.log(uniform.clamp_min(1e-20))).clamp_min(1e-20)
    return -torch.log(exponential)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """`hard` in value, the gradient of `soft`."""
    return hard - soft.detach() + soft


def gumbel_one_hot(
    logits: torch.Tensor, tau: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row a one-hot sample of `softmax(logits)` (Gumbel-max), straight-through the
    Gumbel-softmax at temperature `tau`; returns (weights, sampled index per row)."""
    noise = gumbel_noise(logits.shape, generator).to(logits.device)
    probs = F.softmax((F.log_softmax(logits, dim=-1) + noise) / tau, dim=-1)
    index = probs.argmax(dim=-1)
    return straight_through(F.one_hot(index, probs.shape[-1]).to(probs.dtype), probs), index


def gumbel_top_k(
    logits: torch.Tensor, node_rows: Sequence[Sequence[int]], k: int, tau: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """ROME's Gumbel-top-k: per node, `k` of its incoming edges (rows of `logits`) drawn
    without replacement, as a straight-through 0/1 mask (a node with at most `k` inputs keeps
    them all, a constant mask)."""
    noise = gumbel_noise(logits.shape, generator).to(logits.device)
    parts = []
    for rows in node_rows:
        index = torch.tensor(rows, device=logits.device)
        if len(rows) <= k:
            parts.append(torch.ones(len(rows), dtype=logits.dtype, device=logits.device))
            continue
        perturbed = F.log_softmax(logits[index], dim=-1) + noise[index]
        soft = F.softmax(perturbed / tau, dim=-1)
        hard = torch.zeros_like(soft).scatter_(0, perturbed.topk(k).indices, 1.0)
        parts.append(straight_through(hard, soft))
    return torch.cat(parts)


def node_softmax(betas: torch.Tensor, node_rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """PC-DARTS' edge normalisation: softmax of `betas` over each node's incoming edges."""
    return torch.cat([F.softmax(betas[list(rows)], dim=-1) for rows in node_rows])


class DifferentiableSupernet(Supernet):
    """A supernet whose cells mix every candidate op of every edge (see the module docstring).

    Subclasses build their weights, then call `init_architecture`; they implement `forward`
    (with `cell_weights(cell)` for each cell type), `arch_from_weights`, `arch_weights` and
    `arch_string`.

    Attributes:
        cell_types: the cell types, each with its own alphas and betas.
        op_names: the candidate operations, in column order; `none` first.
        node_rows: per intermediate node, the alpha rows of its incoming edges.
        inputs_per_node: inputs a derived node keeps (DARTS: 2), None when every edge is kept
            and `none` is an operation like the others (NB201).
    """

    cell_types: ClassVar[tuple[str, ...]]
    op_names: ClassVar[tuple[str, ...]]
    node_rows: ClassVar[tuple[tuple[int, ...], ...]]
    inputs_per_node: ClassVar[int | None]

    def init_architecture(
        self, generator: torch.Generator, *, seed: int, edge_norm: bool = False,
        topology_inputs: int | None = None,
    ) -> None:
        """Register the alphas and betas (1e-3 standard normal from `generator`, as DARTS),
        the sampling state and the mode ("softmax").

        Args:
            edge_norm: the betas weigh edges (PC-DARTS) and are trained.
            topology_inputs: the betas choose this many inputs per node (ROME) and are
                trained; "rome" mode needs it.
        """
        if edge_norm and topology_inputs is not None:
            raise ConfigError("edge normalisation (pc-darts) and topology sampling (rome) both "
                              "use the betas; expected one of them")
        edges = sum(len(rows) for rows in self.node_rows)
        for cell in self.cell_types:
            shape = (edges, len(self.op_names))
            self.register_parameter(
                f"alphas_{cell}", nn.Parameter(1e-3 * torch.randn(shape, generator=generator)))
        for cell in self.cell_types:
            self.register_parameter(
                f"betas_{cell}", nn.Parameter(1e-3 * torch.randn(edges, generator=generator)))
        self.edge_norm, self.topology_inputs = edge_norm, topology_inputs
        self.mode, self.tau = "softmax", 1.0
        self.gumbel_generator = torch.Generator().manual_seed(seed + 1)
        self.fixed_weights: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------- parameters
    def alphas(self, cell: str) -> nn.Parameter:
        param: nn.Parameter = getattr(self, f"alphas_{cell}")
        return param

    def betas(self, cell: str) -> nn.Parameter:
        param: nn.Parameter = getattr(self, f"betas_{cell}")
        return param

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: alphas, plus betas when edge-normalised or topology."""
        params = [self.alphas(cell) for cell in self.cell_types]
        if self.edge_norm or self.topology_inputs is not None:
            params += [self.betas(cell) for cell in self.cell_types]
        return params

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an alpha or a beta (trained or not)."""
        arch = {f"{kind}_{cell}" for kind in ("alphas", "betas") for cell in self.cell_types}
        return [p for name, p in self.named_parameters() if name not in arch]

    # ------------------------------------------------------------- mixing weights
    def op_weights(self, cell: str) -> torch.Tensor:
        """Current softmax op weights `(edges, ops)` of `cell`."""
        return F.softmax(self.alphas(cell), dim=-1)

    def edge_weights(self, cell: str) -> torch.Tensor | None:
        """PC-DARTS' normalised edge weights (None without edge normalisation)."""
        if not self.edge_norm:
            return None
        return node_softmax(self.betas(cell), self.node_rows)

    def cell_weights(self, cell: str) -> MixWeights:
        """How `cell` weighs its ops in this forward pass (draws samples in sampling modes)."""
        if self.mode not in MODES:
            raise ConfigError(f"supernet mode: expected one of {MODES}, got '{self.mode}'")
        if self.mode in ("fixed", "active"):
            assert self.fixed_weights is not None, f"mode '{self.mode}' needs fixed_weights"
            return MixWeights(self.fixed_weights[cell], self.edge_weights(cell))
        if self.mode == "gumbel":
            weights, index = gumbel_one_hot(self.alphas(cell), self.tau, self.gumbel_generator)
            return MixWeights(weights, self.edge_weights(cell), index)
        if self.mode == "rome":
            return self._rome_weights(cell)
        return MixWeights(self.op_weights(cell), self.edge_weights(cell))

    def _rome_weights(self, cell: str) -> MixWeights:
        if self.topology_inputs is None:
            raise ConfigError("supernet mode 'rome' needs topology_inputs (the supernet was "
                              "built without ROME's topology parameters)")
        alphas = self.alphas(cell)
        # `none` is the topology's business: the op is drawn from the others
        ops, index = gumbel_one_hot(alphas[:, 1:], self.tau, self.gumbel_generator)
        mask = gumbel_top_k(self.betas(cell), self.node_rows, self.topology_inputs, self.tau,
                            self.gumbel_generator)
        weights = torch.cat([torch.zeros_like(alphas[:, :1]), ops], dim=1) * mask.unsqueeze(1)
        hard = torch.where(mask.detach() > 0.5, index + 1, torch.full_like(index, -1))
        return MixWeights(weights, None, hard)

    def op_share(self, op: str) -> float:
        """Mean softmax weight of `op` over every edge of every cell type (e.g. how far the
        alphas drifted toward skip connections)."""
        column = self.op_names.index(op)
        with torch.no_grad():
            shares = [float(self.op_weights(cell)[:, column].mean()) for cell in self.cell_types]
        return sum(shares) / len(shares)

    # ------------------------------------------------------------- subnets
    def derive(self) -> dict[str, Any]:
        """The subnet the architecture parameters point to.

        With ROME's topology, each node keeps its `topology_inputs` edges of largest beta,
        each with its largest non-`none` alpha; otherwise the space's rule reads the softmax
        weights (times PC-DARTS' edge weights): `arch_from_weights`.
        """
        with torch.no_grad():
            weights = {cell: self._derive_weights(cell).cpu() for cell in self.cell_types}
        return self.arch_from_weights(weights)

    def _derive_weights(self, cell: str) -> torch.Tensor:
        if self.topology_inputs is None:
            weights = self.op_weights(cell)
            edges = self.edge_weights(cell)
            return weights if edges is None else weights * edges.unsqueeze(1)
        alphas, betas = self.alphas(cell), self.betas(cell)
        weights = torch.zeros_like(alphas)
        for rows in self.node_rows:
            index = torch.tensor(rows, device=betas.device)
            keep = betas[index].topk(min(self.topology_inputs, len(rows))).indices
            for row in index[keep].tolist():
                weights[row, 1 + int(alphas[row, 1:].argmax())] = 1.0
        return weights

    @abc.abstractmethod
    def arch_from_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The subnet of per-cell `(edges, ops)` weights by the space's rule (largest weights;
        a row of zeros is an edge the subnet does not have)."""

    @abc.abstractmethod
    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        """One-hot `(edges, ops)` weights per cell type selecting `arch` (zero rows: edges it
        does not have)."""

    @abc.abstractmethod
    def arch_string(self, arch: Arch) -> str:
        """`arch` in its space's text form (NB201's `|op~0|+...`, DARTS' `Genotype(...)`)."""


__all__ = [
    "MODES", "SKIP", "DifferentiableSupernet", "MixWeights", "gumbel_noise", "gumbel_one_hot",
    "gumbel_top_k", "node_softmax", "straight_through",
]
