"""The DARTS CIFAR cell space (Liu et al., "DARTS: Differentiable Architecture Search", 2019).

Pure python + numpy: the torch networks live in `network.py` (evaluation network) and
`supernet.py` (the search network), imported lazily.

An arch is a genotype (see `genotypes.py`): a normal and a reduction cell, each 4 nodes with two
`[op, input]` edges. The network stacks `layers` cells, reductions at 1/3 and 2/3 of the depth,
after a 3x3 stem of `3 * init_channels`. `complexity()` counts the evaluation network exactly as
the DARTS repository builds it (BN affine parameters included, auxiliary head excluded).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nas.arch import Arch
from nas.errors import ConfigError, InvalidArchError
from search_spaces._registry import register_space
from search_spaces.base import SearchSpace
from search_spaces.darts.counting import reduction_layers
from search_spaces.darts.genotypes import (
    CELL_OPS,
    CONCAT,
    PRIMITIVES,
    STEPS,
    published_names,
    raw_genotype,
)

if TYPE_CHECKING:
    import optuna

    from search_spaces.darts.network import NetworkCIFAR
    from search_spaces.darts.supernet import DartsSupernet

CELLS = ("normal", "reduce")
MAX_INPUTS = STEPS + 1  # node 3 chooses among states 0..4


def node_inputs(node: int) -> int:
    """Number of candidate inputs of intermediate node `node` (2 cell inputs + earlier nodes)."""
    return node + 2


@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS cell space.

    Args:
        init_channels: channels of the first cells (16 for search, 36 for evaluation).
        layers: number of cells (8 for search, 20 for evaluation).
        num_classes: classifier outputs.
        in_channels: image channels.
        image_size: input side; must be a multiple of 4 (two stride-2 reductions whose
            factorized reduce needs even sizes).
        auxiliary: whether the evaluation network carries the auxiliary head (never counted
            in `complexity()`).
    """

    name: ClassVar[str] = "darts"
    encoding_version: ClassVar[int] = 1
    family: ClassVar[str] = "darts"
    has_blocks = True

    def __init__(
        self,
        *,
        init_channels: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        auxiliary: bool = False,
    ) -> None:
        if init_channels < 2 or init_channels % 2:
            raise ConfigError(f"init_channels: expected an even number >= 2, got {init_channels}")
        if layers < 3:
            raise ConfigError(f"layers: expected at least 3 cells (two reductions), got {layers}")
        if image_size < 4 or image_size % 4:
            raise ConfigError(
                f"image_size: expected a multiple of 4 (two stride-2 reductions), got {image_size}"
            )
        if num_classes < 1 or in_channels < 1:
            raise ConfigError(
                f"expected num_classes, in_channels >= 1, got {num_classes}, {in_channels}"
            )
        self.init_channels = int(init_channels)
        self.layers = int(layers)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.auxiliary = bool(auxiliary)

    @classmethod
    def tiny(cls) -> DartsSpace:
        """A 4-channel, 3-cell space for fast tests."""
        return cls(init_channels=4, layers=3)

    # ----------------------------------------------------------------- description
    @property
    def dim(self) -> int:
        return len(CELLS) * 2 * STEPS * (len(CELL_OPS) + MAX_INPUTS)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "encoding_version": self.encoding_version,
            "kwargs": {
                "init_channels": self.init_channels,
                "layers": self.layers,
                "num_classes": self.num_classes,
                "in_channels": self.in_channels,
                "image_size": self.image_size,
                "auxiliary": self.auxiliary,
            },
        }

    def describe(self) -> dict[str, Any]:
        per_cell = 1
        for node in range(STEPS):
            per_cell *= math.comb(node_inputs(node), 2) * len(CELL_OPS) ** 2
        return {
            "name": self.name,
            "kwargs": self.spec()["kwargs"],
            "choices": {
                "operation (per edge)": list(CELL_OPS),
                **{f"inputs of node {n}": [f"2 of {node_inputs(n)}"] for n in range(STEPS)},
            },
            "operations": list(PRIMITIVES),
            "cell_operations": list(CELL_OPS),
            "nodes_per_cell": STEPS,
            "edges_per_node": 2,
            "reduction_cells": list(reduction_layers(self.layers)),
            # two distinct inputs per node, each with any non-zero op; edge order within a node
            # does not change the network, so pairs are counted once
            "num_subnets": per_cell**2,
            "dim": self.dim,
            "published_genotypes": published_names(),
        }

    # ----------------------------------------------------------------- validation
    def normalize(self, obj: Any) -> dict[str, Any]:
        raw = raw_genotype(obj)
        unknown = set(raw) - {"normal", "normal_concat", "reduce", "reduce_concat"}
        if unknown:
            raise InvalidArchError(f"genotype: unknown key(s) {sorted(unknown)}")
        arch: dict[str, Any] = {}
        for cell in CELLS:
            if cell not in raw:
                raise InvalidArchError(
                    f"genotype: missing '{cell}' (expected 8 [op, input] edges)"
                )
            edges = raw[cell]
            if not isinstance(edges, (list, tuple)):
                raise InvalidArchError(f"{cell}: expected a list of [op, input], got {edges!r}")
            arch[cell] = [_edge(cell, i, e) for i, e in enumerate(edges)]
            concat = raw.get(f"{cell}_concat", list(CONCAT))
            try:
                arch[f"{cell}_concat"] = [int(i) for i in concat]
            except (TypeError, ValueError):
                raise InvalidArchError(
                    f"{cell}_concat: expected [2, 3, 4, 5], got {concat!r}"
                ) from None
        self.validate(arch)
        return arch

    def validate(self, arch: Arch) -> None:
        for cell in CELLS:
            edges = arch.get(cell)
            if not isinstance(edges, list) or len(edges) != 2 * STEPS:
                got = len(edges) if isinstance(edges, list) else type(edges).__name__
                raise InvalidArchError(
                    f"{cell}: expected {2 * STEPS} edges (2 per node, {STEPS} nodes), got {got}"
                )
            for index, edge in enumerate(edges):
                node = index // 2
                if (
                    not isinstance(edge, list) or len(edge) != 2 or edge[0] not in CELL_OPS
                    or not isinstance(edge[1], int) or isinstance(edge[1], bool)
                    or not 0 <= edge[1] < node_inputs(node)
                ):
                    raise InvalidArchError(
                        f"{cell}[{index}]: expected [op, input] with op in {', '.join(CELL_OPS)} "
                        f"and 0 <= input < {node_inputs(node)} (node {node}), got {edge!r}"
                    )
            if list(arch.get(f"{cell}_concat", [])) != list(CONCAT):
                raise InvalidArchError(
                    f"{cell}_concat: expected {list(CONCAT)} (the DARTS space concatenates all "
                    f"4 nodes), got {arch.get(f'{cell}_concat')!r}"
                )

    # ----------------------------------------------------------------- sampling
    def _cell(self, ops: list[str], inputs: list[int]) -> list[list[Any]]:
        return [[op, index] for op, index in zip(ops, inputs, strict=True)]

    def _arch(self, normal: list[list[Any]], reduce: list[list[Any]]) -> dict[str, Any]:
        return {
            "normal": normal, "normal_concat": list(CONCAT),
            "reduce": reduce, "reduce_concat": list(CONCAT),
        }

    def _sample_cell(self, rng: np.random.Generator) -> list[list[Any]]:
        edges: list[list[Any]] = []
        for node in range(STEPS):
            pair = rng.choice(node_inputs(node), size=2, replace=False)
            for index in pair:
                edges.append([CELL_OPS[int(rng.integers(len(CELL_OPS)))], int(index)])
        return edges

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._arch(self._sample_cell(rng), self._sample_cell(rng))

    def largest(self) -> dict[str, Any]:
        # sep_conv_5x5 has the most weights; taking the two latest inputs keeps reduction-cell
        # edges at stride 1 (more MACs)
        cell = [["sep_conv_5x5", node + offset] for node in range(STEPS) for offset in (0, 1)]
        return self._arch(copy.deepcopy(cell), copy.deepcopy(cell))

    def smallest(self) -> dict[str, Any]:
        normal = [["skip_connect", i] for _ in range(STEPS) for i in (0, 1)]
        reduce = [["max_pool_3x3", i] for _ in range(STEPS) for i in (0, 1)]
        return self._arch(normal, reduce)

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        self.validate(arch)
        child = copy.deepcopy(dict(arch))
        for cell in CELLS:
            edges = child[cell]
            for index, edge in enumerate(edges):
                if rng.random() < prob:
                    edge[0] = CELL_OPS[int(rng.integers(len(CELL_OPS)))]
                if rng.random() < prob:
                    node, other = index // 2, edges[index ^ 1][1]
                    choices = [i for i in range(node_inputs(node)) if i != other]
                    edge[1] = int(choices[int(rng.integers(len(choices)))])
        return child

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        # whole nodes are inherited so that a node never gets two copies of one input
        child: dict[str, Any] = {}
        for cell in CELLS:
            edges: list[list[Any]] = []
            for node in range(STEPS):
                parent = a if rng.random() < 0.5 else b
                edges.extend(copy.deepcopy(parent[cell][2 * node: 2 * node + 2]))
            child[cell] = edges
            child[f"{cell}_concat"] = list(CONCAT)
        return self._arch(child["normal"], child["reduce"])

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        cells: dict[str, list[list[Any]]] = {}
        for cell in CELLS:
            edges: list[list[Any]] = []
            for node in range(STEPS):
                n = node_inputs(node)
                pairs = [f"{i},{j}" for i in range(n) for j in range(i + 1, n)]
                pair = str(trial.suggest_categorical(f"{cell}_node{node}_inputs", pairs))
                for slot, index in enumerate(pair.split(",")):
                    name = f"{cell}_node{node}_op{slot}"
                    op = str(trial.suggest_categorical(name, list(CELL_OPS)))
                    edges.append([op, int(index)])
            cells[cell] = edges
        return self._arch(cells["normal"], cells["reduce"])

    # ----------------------------------------------------------------- encoding
    def encode(self, arch: Arch) -> np.ndarray:
        self.validate(arch)
        width = len(CELL_OPS) + MAX_INPUTS
        vector = np.zeros(self.dim, dtype=np.float32)
        for c, cell in enumerate(CELLS):
            for e, (op, index) in enumerate(arch[cell]):
                base = (c * 2 * STEPS + e) * width
                vector[base + CELL_OPS.index(op)] = 1.0
                vector[base + len(CELL_OPS) + int(index)] = 1.0
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dim:
            raise InvalidArchError(
                f"expected a vector of length {self.dim}, got {vector.shape[0]}"
            )
        width = len(CELL_OPS) + MAX_INPUTS
        cells: dict[str, list[list[Any]]] = {}
        for c, cell in enumerate(CELLS):
            edges = []
            for e in range(2 * STEPS):
                chunk = vector[(c * 2 * STEPS + e) * width:][:width]
                valid = node_inputs(e // 2)
                edges.append([
                    CELL_OPS[int(np.argmax(chunk[: len(CELL_OPS)]))],
                    int(np.argmax(chunk[len(CELL_OPS): len(CELL_OPS) + valid])),
                ])
            cells[cell] = edges
        arch = self._arch(cells["normal"], cells["reduce"])
        self.validate(arch)
        return arch

    # ----------------------------------------------------------------- complexity
    def complexity(self, arch: Arch) -> dict[str, int]:
        from search_spaces.darts.counting import count_network

        self.validate(arch)
        params, macs = count_network(
            arch, init_channels=self.init_channels, layers=self.layers,
            num_classes=self.num_classes, in_channels=self.in_channels,
            image_size=self.image_size,
        )
        return {"params": params, "macs": macs}

    # ----------------------------------------------------------------- latency blocks
    def block_keys(self, arch: Arch) -> list[str]:
        """The op keys (`darts/<op>/c<C>/s<side>/x<stride>`) of the genotype's kept edges, one
        per edge of every cell: what a per-op lookup table sums (see `blocks.py`)."""
        from search_spaces.darts.blocks import genotype_block_keys

        self.validate(arch)
        return genotype_block_keys(arch, init_channels=self.init_channels, layers=self.layers,
                                   image_size=self.image_size)

    def block_key_universe(self, resolutions: Sequence[int] | None = None) -> list[str]:
        """Every op key at every edge shape of the network (7 ops x about 5 shapes)."""
        from search_spaces.darts.blocks import key_universe

        return key_universe(init_channels=self.init_channels, layers=self.layers,
                            image_sizes=resolutions or [self.image_size])

    # ----------------------------------------------------------------- torch side
    def build_supernet(self, **kwargs: Any) -> DartsSupernet:
        """The DARTS search network; kwargs go to `DartsSupernet` (partial_channels, ...)."""
        from search_spaces.darts.supernet import DartsSupernet

        return DartsSupernet(self, **kwargs)

    def build_network(self, arch: Arch, *, drop_path_prob: float = 0.0) -> NetworkCIFAR:
        """The evaluation network (`NetworkCIFAR`) of a genotype, freshly initialised."""
        from search_spaces.darts.network import NetworkCIFAR

        self.validate(arch)
        return NetworkCIFAR(
            arch, init_channels=self.init_channels, layers=self.layers,
            num_classes=self.num_classes, in_channels=self.in_channels,
            auxiliary=self.auxiliary, drop_path_prob=drop_path_prob,
        )


def _edge(cell: str, index: int, edge: Any) -> list[Any]:
    if isinstance(edge, Mapping):
        edge = [edge.get("op"), edge.get("input")]
    if not isinstance(edge, (list, tuple)) or len(edge) != 2:
        raise InvalidArchError(f"{cell}[{index}]: expected [op, input], got {edge!r}")
    op, source = edge
    try:
        return [str(op), int(source)]
    except (TypeError, ValueError):
        raise InvalidArchError(
            f"{cell}[{index}]: expected an integer input, got {source!r}"
        ) from None
