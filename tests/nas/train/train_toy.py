"""A toy search space and supernet for training tests: 2 conv blocks, elastic everything.

Arch: {"depth": 1|2, "width": 4|8, "kernel_size": 3|5, "resolution": one of `resolutions`}.
Small enough that a training step takes milliseconds; has batch norm (running statistics
must survive checkpoints) and dropout (the torch RNG must be restored on resume).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.arch import Arch
from nas.errors import InvalidArchError
from nas.supernet import Supernet
from search_spaces import SPACES, register_space
from search_spaces.base import SearchSpace

NAME = "toy-train"
CHOICES = {"depth": (1, 2), "width": (4, 8), "kernel_size": (3, 5)}


class ToySpace(SearchSpace):
    name = NAME
    encoding_version = 1

    def __init__(
        self,
        *,
        num_classes: int = 4,
        in_channels: int = 3,
        resolutions: list[int] | None = None,
        image_size: int = 16,
    ) -> None:
        self.num_classes, self.in_channels = num_classes, in_channels
        self.resolutions = sorted(resolutions or [image_size])
        self.image_size = image_size

    @property
    def dim(self) -> int:
        return 4

    def spec(self) -> dict[str, Any]:
        kwargs = {"num_classes": self.num_classes, "in_channels": self.in_channels,
                  "resolutions": self.resolutions, "image_size": self.image_size}
        return {"name": self.name, "encoding_version": 1, "kwargs": kwargs}

    def _make(self, **values: Any) -> dict[str, Any]:
        return {key: int(values[key]) for key in (*CHOICES, "resolution")}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        values = {key: rng.choice(choices) for key, choices in CHOICES.items()}
        return self._make(**values, resolution=rng.choice(self.resolutions))

    def largest(self) -> dict[str, Any]:
        top = {k: max(v) for k, v in CHOICES.items()}
        return self._make(**top, resolution=self.resolutions[-1])

    def smallest(self) -> dict[str, Any]:
        bottom = {k: min(v) for k, v in CHOICES.items()}
        return self._make(**bottom, resolution=self.resolutions[0])

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        fresh = self.sample(rng)
        return {k: (fresh[k] if rng.random() < prob else arch[k]) for k in arch}

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        return {k: (a[k] if rng.random() < 0.5 else b[k]) for k in a}

    def encode(self, arch: Arch) -> np.ndarray:
        return np.array([arch[k] for k in (*CHOICES, "resolution")], dtype=np.float32)

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        return self._make(**dict(zip((*CHOICES, "resolution"), vector.tolist(), strict=True)))

    def validate(self, arch: Arch) -> None:
        for key, choices in {**CHOICES, "resolution": tuple(self.resolutions)}.items():
            if arch.get(key) not in choices:
                raise InvalidArchError(f"{key}: expected one of {choices}, got {arch.get(key)!r}")

    def normalize(self, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise InvalidArchError("expected an object")
        obj = {"resolution": self.resolutions[-1], **obj}
        self.validate(obj)
        return self._make(**obj)

    def suggest(self, trial: Any) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return self.spec()

    def complexity(self, arch: Arch) -> dict[str, int]:
        w, k, d, r = arch["width"], arch["kernel_size"], arch["depth"], arch["resolution"]
        params = self.in_channels * w * 9 + d * w * w * k * k + w * self.num_classes
        macs = self.in_channels * w * 9 * r * r + d * w * w * k * k * r * r + w * self.num_classes
        return {"params": params, "macs": macs}

    def build_supernet(self) -> ToySupernet:
        return ToySupernet(self)


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, width: int) -> torch.Tensor:
    assert bn.running_mean is not None and bn.running_var is not None
    return F.batch_norm(
        x, bn.running_mean[:width], bn.running_var[:width], bn.weight[:width], bn.bias[:width],
        bn.training, bn.momentum or 0.1, bn.eps,
    )


class ToySupernet(Supernet):
    def __init__(self, space: ToySpace) -> None:
        super().__init__()
        self.space = space
        generator = torch.Generator().manual_seed(0)
        stem = torch.randn(8, space.in_channels, 3, 3, generator=generator)
        self.stem = nn.Parameter(stem * 0.3)
        self.stem_bn = nn.BatchNorm2d(8)
        self.convs = nn.ParameterList(
            [nn.Parameter(torch.randn(8, 8, 5, 5, generator=generator) * 0.1) for _ in range(2)]
        )
        self.bns = nn.ModuleList([nn.BatchNorm2d(8) for _ in range(2)])
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(8, space.num_classes)
        with torch.no_grad():  # seeded: nn.Linear's own init would use the global RNG
            self.head.weight.copy_(torch.randn(space.num_classes, 8, generator=generator) * 0.3)
            self.head.bias.zero_()
        self.reorganized = 0
        self.active_log: list[dict[str, Any]] = []  # every set_active, for tests
        self._arch = space.largest()

    def set_active(self, arch: Arch) -> None:
        self.space.validate(arch)
        self._arch = dict(arch)
        self.active_log.append(dict(arch))

    def active(self) -> dict[str, Any]:
        return dict(self._arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, k, d = self._arch["width"], self._arch["kernel_size"], self._arch["depth"]
        x = F.relu(_bn(F.conv2d(x, self.stem[:w], padding=1), self.stem_bn, w))
        start = (5 - k) // 2
        for i in range(d):
            weight = self.convs[i][:w, :w, start : start + k, start : start + k]
            x = F.relu(_bn(F.conv2d(x, weight, padding=k // 2), self.bns[i], w))
        x = self.dropout(x.mean(dim=(2, 3)))
        return F.linear(x, self.head.weight[:, :w], self.head.bias)

    def extract_subnet(self, arch: Arch) -> nn.Module:
        # a frozen-arch deep copy stands in for a static network in these tests
        clone = copy.deepcopy(self)
        clone.set_active(arch)
        return clone

    def reorganize_channels(self) -> None:
        self.reorganized += 1


def register() -> None:
    if NAME not in SPACES:
        register_space(NAME)(ToySpace)
