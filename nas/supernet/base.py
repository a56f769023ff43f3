"""The weight-sharing network interface that every space's supernet implements."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from torch import nn

from nas.arch import Arch

if TYPE_CHECKING:  # a space builds its supernet: at run time only that direction imports
    from search_spaces.base import SearchSpace


class Supernet(nn.Module, abc.ABC):
    """A network holding the weights of every subnet of `space`.

    Lifecycle: `set_active(arch)` selects a subnet (validated first); `forward` then runs that
    subnet. `extract_subnet(arch)` returns a standalone static copy (plain layers, no slicing)
    whose eval-mode outputs equal the supernet's with `arch` active.
    """

    space: SearchSpace

    @abc.abstractmethod
    def set_active(self, arch: Arch) -> None: ...

    @abc.abstractmethod
    def active(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def extract_subnet(self, arch: Arch) -> nn.Module: ...

    def input_resolution(self, arch: Arch) -> int | None:
        """Input side length this subnet expects, or None when any size works."""
        resolution = arch.get("resolution")
        return int(resolution) if resolution is not None else None

    def reorganize_channels(self) -> None:
        """Sort elastic channels by importance before a phase shrinks them (default: no-op)."""

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        """The standalone module of block `key` and its input shape (batch 1), for timing.

        Only supernets of spaces with `has_blocks` implement it (per-block latency tables).
        """
        from nas.errors import NasError

        raise NasError(
            f"space '{self.space.name}' has no per-block modules; profile whole subnets only "
            "(nas profile --no-blocks)"
        )
