"""`nb201`: the NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG of 4 nodes; each of its 6 edges `j -> i` (j < i) carries one of 5 operations,
so there are 5**6 = 15,625 cells. Canonical subnet config, one key per edge (node i from j)::

    {"edge_1_0": op, "edge_2_0": op, "edge_2_1": op,
     "edge_3_0": op, "edge_3_1": op, "edge_3_2": op}

`normalize()` also reads the benchmark's strings,
`|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`,
and lists of 6 op names in edge order; `to_string()` writes the string form.

Encoding (dim 30): one-hot op per edge, in edge order. `complexity()` is exact and analytic for
the benchmark's network (stem, 3 stages of `cells_per_stage` cells at C, 2C, 4C channels joined
by ResNet blocks with stride 2, BN-ReLU, global pooling, linear classifier): params include
BatchNorm affine weights; MACs count convolutions and the classifier. The all-`nor_conv_3x3`
cell gives 1,531,546 params, as the benchmark reports (1.53 MB).

The space serves tabular benchmarks (`nas search --oracle`) and trains as a weight-sharing
supernet (`build_supernet()`, `NB201Supernet`: one op per edge is active, the same in every
cell). `largest()` is every edge `nor_conv_3x3`; `smallest()` is a single skip from the cell
input to its output: no cell weights, like the all-`none` cell, but the network still depends on
its input (with all-`none` cells the sandwich rule would train a constant function).
`build_network(arch)` is one cell's stand-alone network, freshly initialised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import Arch
from nas.errors import ConfigError, InvalidArchError
from search_spaces._registry import register_space
from search_spaces.base import Choice, SearchSpace
from search_spaces.nb201.cells import CONV_KERNELS, KEYS, OPS, from_string

if TYPE_CHECKING:
    import optuna

    from search_spaces.nb201.network import NB201Network
    from search_spaces.nb201.supernet import NB201Supernet

@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 cells.

    Args:
        num_classes: classifier outputs (10 as in the CIFAR-10 benchmark).
        channels: channels of the first stage, C (16 in the benchmark).
        cells_per_stage: cells per stage, N (5 in the benchmark).
        image_size: input side (32 in the benchmark).
        in_channels: image channels.
    """

    name = "nb201"
    encoding_version = 1
    family = "nb201"  # no trainer yet: single-path and bilevel methods come with its supernet

    def __init__(
        self,
        *,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        image_size: int = 32,
        in_channels: int = 3,
    ) -> None:
        if min(num_classes, channels, cells_per_stage, in_channels) < 1 or image_size < 4:
            raise ConfigError(
                "nb201: expected num_classes, channels, cells_per_stage, in_channels >= 1 and "
                f"image_size >= 4, got {num_classes}, {channels}, {cells_per_stage}, "
                f"{in_channels}, {image_size}"
            )
        self.num_classes, self.channels = num_classes, channels
        self.cells_per_stage, self.image_size, self.in_channels = (
            cells_per_stage,
            image_size,
            in_channels,
        )

    @classmethod
    def tiny(cls) -> NB201Space:
        """C=4, one cell per stage, 16 px: a network for fast tests."""
        return cls(channels=4, cells_per_stage=1, image_size=16)

    @property
    def dim(self) -> int:
        return len(KEYS) * len(OPS)

    def spec(self) -> dict[str, Any]:
        kwargs = {
            "num_classes": self.num_classes,
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "image_size": self.image_size,
            "in_channels": self.in_channels,
        }
        return {"name": self.name, "encoding_version": self.encoding_version, "kwargs": kwargs}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "edges": list(KEYS),
            "operations": list(OPS),
            "num_subnets": len(OPS) ** len(KEYS),
            "tabular": True,
            **self.spec()["kwargs"],
        }

    def _from_indices(self, indices: Sequence[int]) -> dict[str, Any]:
        return {key: OPS[int(k)] for key, k in zip(KEYS, indices, strict=True)}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._from_indices(rng.integers(len(OPS), size=len(KEYS)).tolist())

    def largest(self) -> dict[str, Any]:
        return dict.fromkeys(KEYS, "nor_conv_3x3")

    def smallest(self) -> dict[str, Any]:
        return {**dict.fromkeys(KEYS, "none"), "edge_3_0": "skip_connect"}

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        child = dict(arch)
        flips = rng.random(len(KEYS)) < prob
        # a shift of 1..4 places moves to a *different* op, uniformly, so a mutation changes it
        shifts = rng.integers(1, len(OPS), size=len(KEYS))
        for key, flip, shift in zip(KEYS, flips, shifts, strict=True):
            if flip:
                child[key] = OPS[(OPS.index(arch[key]) + int(shift)) % len(OPS)]
        return child

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        take_a = rng.random(len(KEYS)) < 0.5
        return {key: a[key] if pick else b[key] for key, pick in zip(KEYS, take_a, strict=True)}

    def encode(self, arch: Arch) -> np.ndarray:
        vector = np.zeros((len(KEYS), len(OPS)), dtype=np.float32)
        for row, key in enumerate(KEYS):
            vector[row, OPS.index(arch[key])] = 1.0
        return vector.reshape(-1)

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        values = np.asarray(vector, dtype=np.float32)
        if values.shape != (self.dim,):
            raise InvalidArchError(
                f"nb201: expected a vector of length {self.dim}, got {values.shape}"
            )
        return self._from_indices(values.reshape(len(KEYS), len(OPS)).argmax(axis=1).tolist())

    def validate(self, arch: Arch) -> None:
        if not isinstance(arch, Mapping):
            raise InvalidArchError(
                f"nb201: expected a mapping of edges, got {type(arch).__name__}"
            )
        unknown = sorted(set(arch) - set(KEYS))
        if unknown:
            raise InvalidArchError(
                f"nb201: unknown key '{unknown[0]}' (expected {', '.join(KEYS)})"
            )
        for key in KEYS:
            if key not in arch:
                raise InvalidArchError(f"nb201: missing key '{key}'")
            if arch[key] not in OPS:
                raise InvalidArchError(
                    f"nb201: {key} must be one of {', '.join(OPS)}, got {arch[key]!r}"
                )

    def normalize(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, str):
            arch: Any = from_string(obj)
        elif isinstance(obj, (list, tuple)):
            if len(obj) != len(KEYS):
                raise InvalidArchError(
                    f"nb201: expected {len(KEYS)} ops in edge order, got {len(obj)}"
                )
            arch = dict(zip(KEYS, obj, strict=True))
        elif isinstance(obj, Mapping) and set(obj) == {"arch"}:
            return self.normalize(obj["arch"])
        else:
            arch = obj
        self.validate(arch)
        return {key: arch[key] for key in KEYS}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {key: trial.suggest_categorical(key, OPS) for key in KEYS}

    def complexity(self, arch: Arch) -> dict[str, int]:
        c, n, side = self.channels, self.cells_per_stage, self.image_size
        params = 9 * self.in_channels * c + 2 * c  # stem conv + BN
        macs = 9 * self.in_channels * c * side * side
        for stage in range(3):
            width = c * 2**stage
            area = (side // 2**stage) ** 2
            if stage > 0:  # ResNet block: conv3x3 s2, conv3x3, avgpool + conv1x1 shortcut
                prev = width // 2
                block = 9 * prev * width + 9 * width * width + prev * width
                params += block + 4 * width
                macs += block * area
            for key in KEYS:
                k = CONV_KERNELS.get(arch[key])
                if k is not None:  # ReLU-conv-BN; none, skip and pooling have no weights
                    params += n * (k * k * width * width + 2 * width)
                    macs += n * k * k * width * width * area
        last = 4 * c
        params += 2 * last + last * self.num_classes + self.num_classes
        macs += last * self.num_classes
        return {"params": int(params), "macs": int(macs)}

    def check_network_size(self) -> None:
        """Raise `ConfigError` unless the network can run at `image_size` (two stride-2 stages
        whose conv and pooled shortcut must give the same side)."""
        if self.image_size % 4:
            raise ConfigError(
                f"nb201 network: expected image_size divisible by 4, got {self.image_size}; "
                "pick another --image-size (the benchmark uses 32)"
            )

    def few_shot_choices(self) -> tuple[Choice, ...]:
        """Every edge: its op is shared by all cells, so a split halves every cell alike."""
        return tuple(Choice(key, None, OPS) for key in KEYS)

    def build_supernet(self) -> NB201Supernet:
        """The weight-sharing network (single path: one op per edge, see `NB201Supernet`)."""
        from search_spaces.nb201.supernet import NB201Supernet

        return NB201Supernet(self)

    def build_network(self, arch: Arch) -> NB201Network:
        """The stand-alone network of one cell, freshly initialised."""
        from search_spaces.nb201.network import NB201Network, StaticCell

        canonical = self.normalize(arch)
        self.check_network_size()
        return NB201Network(
            lambda channels: StaticCell(canonical, channels),
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
        )
