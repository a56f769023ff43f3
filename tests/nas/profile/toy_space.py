"""A tiny chain-of-convolutions space for profiling tests (registered as "toy-chain").

Subnets: `{"width": [3 ints in {4, 8, 16}], "depth": 1..3, "resolution": int}`; a foreign
format `{"w": [...], "d": d, "r": r}` is accepted by `normalize` (like Once-for-All's ks/e/d).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import InvalidArchError
from search_spaces import SPACES, register_space
from search_spaces.base import SearchSpace

WIDTHS = (4, 8, 16)


class ToySupernet(nn.Module):
    def __init__(self, space: ToyChainSpace) -> None:
        super().__init__()
        self.space = space

    def extract_subnet(self, arch: Any) -> nn.Module:
        layers: list[nn.Module] = []
        channels = 3
        for width in arch["width"][: arch["depth"]]:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
        return nn.Sequential(*layers)

    def input_resolution(self, arch: Any) -> int:
        return int(arch["resolution"])

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        kind, c_in, c_out, side = key.split("_")
        if kind == "conv":
            module: nn.Module = nn.Sequential(nn.Conv2d(int(c_in), int(c_out), 3, padding=1),
                                              nn.ReLU())
        else:
            module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(int(c_in), 10))
        return module, (1, int(c_in), int(side), int(side))


class ToyChainSpace(SearchSpace):
    name = "toy-chain"
    encoding_version = 1
    has_blocks = True  # block_keys() below: per-block lookup tables apply

    def __init__(self, *, resolutions: Sequence[int] = (8, 12), num_classes: int = 10,
                 image_size: int | None = None) -> None:
        self.resolutions = sorted(int(r) for r in resolutions)
        self.num_classes = num_classes
        self.image_size = image_size or self.resolutions[-1]

    @property
    def dim(self) -> int:
        return 3 * 3 + 3 + len(self.resolutions)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "encoding_version": self.encoding_version,
                "kwargs": {"resolutions": self.resolutions, "num_classes": self.num_classes}}

    def _make(self, width: Sequence[int], depth: int, resolution: int) -> dict[str, Any]:
        arch = {"width": [int(w) for w in width], "depth": int(depth),
                "resolution": int(resolution)}
        self.validate(arch)
        return arch

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._make(rng.choice(WIDTHS, 3), int(rng.integers(1, 4)),
                          int(rng.choice(self.resolutions)))

    def largest(self) -> dict[str, Any]:
        return self._make([16] * 3, 3, self.resolutions[-1])

    def smallest(self) -> dict[str, Any]:
        return self._make([4] * 3, 1, self.resolutions[0])

    def mutate(self, arch: Any, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        return self.sample(rng) if rng.random() < prob else dict(arch)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> dict[str, Any]:
        return dict(a if rng.random() < 0.5 else b)

    def encode(self, arch: Any) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for i, width in enumerate(arch["width"]):
            vector[3 * i + WIDTHS.index(width)] = 1.0
        vector[9 + arch["depth"] - 1] = 1.0
        vector[12 + self.resolutions.index(arch["resolution"])] = 1.0
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        width = [WIDTHS[int(np.argmax(vector[3 * i : 3 * i + 3]))] for i in range(3)]
        return self._make(width, int(np.argmax(vector[9:12])) + 1,
                          self.resolutions[int(np.argmax(vector[12:]))])

    def validate(self, arch: Any) -> None:
        if not isinstance(arch, dict) or set(arch) != {"width", "depth", "resolution"}:
            raise InvalidArchError(f"expected keys width, depth, resolution, got {arch!r}")
        if len(arch["width"]) != 3 or any(w not in WIDTHS for w in arch["width"]):
            raise InvalidArchError(f"width: expected 3 values in {WIDTHS}, got {arch['width']}")
        if arch["depth"] not in (1, 2, 3):
            raise InvalidArchError(f"depth: expected 1, 2 or 3, got {arch['depth']}")
        if arch["resolution"] not in self.resolutions:
            raise InvalidArchError(f"resolution: expected one of {self.resolutions}")

    def normalize(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict) and "w" in obj:
            return self._make(obj["w"], obj["d"], obj.get("r", self.image_size))
        if not isinstance(obj, dict):
            raise InvalidArchError(f"expected a subnet config object, got {obj!r}")
        return self._make(obj.get("width", []), obj.get("depth", 0), obj.get("resolution", 0))

    def suggest(self, trial: Any) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def layers(self, arch: Any) -> list[tuple[int, int]]:
        widths = [3, *arch["width"][: arch["depth"]]]
        return list(zip(widths[:-1], widths[1:], strict=True))

    def complexity(self, arch: Any) -> dict[str, int]:
        side = arch["resolution"]
        macs = sum(9 * a * b * side * side for a, b in self.layers(arch))
        params = sum(9 * a * b + b for a, b in self.layers(arch))
        return {"macs": macs, "params": params}

    def block_keys(self, arch: Any) -> list[str]:
        side = arch["resolution"]
        keys = [f"conv_{a}_{b}_{side}" for a, b in self.layers(arch)]
        return [*keys, f"head_{self.layers(arch)[-1][1]}_10_{side}"]

    def block_key_universe(self, resolutions: Sequence[int]) -> list[str]:
        keys = set()
        for side in resolutions:
            pairs = {(3, w) for w in WIDTHS} | {(a, b) for a in WIDTHS for b in WIDTHS}
            keys |= {f"conv_{a}_{b}_{side}" for a, b in pairs}
            keys |= {f"head_{w}_10_{side}" for w in WIDTHS}
        return sorted(keys)

    def build_supernet(self) -> Any:
        return ToySupernet(self)


if "toy-chain" not in SPACES:
    register_space("toy-chain")(ToyChainSpace)

torch.set_num_threads(1)
