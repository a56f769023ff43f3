"""The search-space interface: pure data (python + numpy), no torch at import time.

A space describes which subnets exist and how to sample, mutate, encode and count them.
The torch side (the weight-sharing network) is built on demand by `build_supernet()`,
so that search, predictors and the CLI's `nas space` commands never pay for torch modules.

Lifecycle: a space is constructed from keyword arguments (class count, width, image size ...);
`spec()` records them so `space_from_spec()` rebuilds an identical space from a checkpoint.
User-given configs enter through `normalize()`, which accepts the canonical form and any
foreign formats (Once-for-All's `ks/e/d/r`, DARTS genotypes) and returns a validated
canonical dict. Everything else takes canonical archs only.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nas.arch import Arch

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from nas.supernet.base import Supernet

# `(encoded, counts)` of a batch of canonical archs: `(n, dim)` encodings and `(n, K)` counts of
# executed blocks over a given key list (see `SearchSpace.batch_features`)
BatchFeatures = Callable[[Sequence[Arch]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Choice:
    """One decision of an arch that few-shot NAS may split the supernet on.

    `arch[key]` (an NB201 edge) or `arch[key][index]` (one block's kernel size) takes one of
    `candidates`; every canonical arch has exactly one of them there.
    """

    key: str
    index: int | None
    candidates: tuple[Any, ...]

    @property
    def name(self) -> str:
        return self.key if self.index is None else f"{self.key}[{self.index}]"

    def value(self, arch: Arch) -> Any:
        return arch[self.key] if self.index is None else arch[self.key][self.index]

    def with_value(self, arch: Arch, value: Any) -> dict[str, Any]:
        """A copy of `arch` that takes `value` at this choice."""
        out = dict(arch)
        if self.index is None:
            out[self.key] = value
        else:
            values = list(arch[self.key])
            values[self.index] = value
            out[self.key] = values
        return out


class SearchSpace(abc.ABC):
    """Base class of every registered search space."""

    name: ClassVar[str]
    encoding_version: ClassVar[int]
    # Which trainers train this space's supernet (`nas.train.registry` maps a family to its
    # methods): "once-for-all" for elastic weight-sharing supernets (sandwich, progressive
    # shrinking), "darts" for cells with architecture weights (bilevel methods). A family
    # without trainers (a tabular space) cannot be trained.
    family: ClassVar[str] = "once-for-all"
    # Whether `block_keys()` lists the blocks a subnet executes, so that per-block latency
    # lookup tables can be measured and used (the supernet then implements `block_module`).
    has_blocks: ClassVar[bool] = False

    # The input every subnet takes. Spaces set these from their constructor arguments; the
    # defaults describe a 3-channel 32 x 32 image.
    in_channels: int = 3
    image_size: int = 32
    # Elastic input sides a subnet may choose (the arch's "resolution"); empty when every
    # subnet takes `image_size` inputs.
    resolutions: Sequence[int] = ()

    def subnet_from_text(self, text: str) -> dict[str, Any]:
        """A subnet named on a command line: `max`, `min`, inline JSON or a JSON file (in any
        form `normalize` reads), as a validated canonical arch."""
        from nas.arch import parse_arch_argument

        if text == "max":
            return self.largest()
        if text == "min":
            return self.smallest()
        return self.normalize(parse_arch_argument(text))

    def input_resolution(self, arch: Arch) -> int:
        """The input side `arch` runs at: its `resolution` in a space with elastic
        resolutions, else `image_size` (what `complexity` counts MACs at)."""
        return int(arch["resolution"]) if self.resolutions else int(self.image_size)

    def input_sizes(self) -> list[int]:
        """The input sides subnets use: the elastic `resolutions`, else `[image_size]`."""
        return [int(side) for side in self.resolutions] or [int(self.image_size)]

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of `encode()`'s output."""

    @abc.abstractmethod
    def spec(self) -> dict[str, Any]:
        """`{"name", "encoding_version", "kwargs"}`: enough to rebuild this exact space."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random valid subnet."""

    @abc.abstractmethod
    def largest(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def smallest(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        """A copy of `arch` where each choice is resampled with probability `prob`; stays valid."""

    @abc.abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        """A valid child taking each choice from `a` or `b`."""

    @abc.abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """A float32 vector of length `dim`; `decode(encode(a)) == a`."""

    @abc.abstractmethod
    def decode(self, vector: np.ndarray) -> dict[str, Any]: ...

    @abc.abstractmethod
    def validate(self, arch: Arch) -> None:
        """Raise `InvalidArchError` naming the offending key when `arch` is not in the space."""

    @abc.abstractmethod
    def normalize(self, obj: Any) -> dict[str, Any]:
        """Turn user input (canonical or a foreign format) into a validated canonical arch."""

    @abc.abstractmethod
    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw an arch through an Optuna trial (one categorical param per choice)."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able summary of the choices and the number of subnets, for `nas space show`."""

    @abc.abstractmethod
    def complexity(self, arch: Arch) -> dict[str, int]:
        """Exact `{"params", "macs"}` of the extracted subnet (batch 1, no auxiliary head)."""

    @abc.abstractmethod
    def build_supernet(self) -> Supernet:
        """The weight-sharing torch network for this space (imports torch lazily)."""

    # -- optional abilities: documented defaults, overridden where a space can do better ----
    def encode_batch(self, archs: Sequence[Arch]) -> np.ndarray:
        """`(n, dim)` float32 encodings of `archs` (default: `encode` one by one)."""
        out = np.empty((len(archs), self.dim), dtype=np.float32)
        for row, arch in enumerate(archs):
            out[row] = self.encode(arch)
        return out

    def batch_features(self, keys: Sequence[str]) -> BatchFeatures | None:
        """A vectorised `(encode, count blocks over keys)` for whole batches (default: None).

        Latency prediction in search featurizes 100,000+ subnets; a space whose features have
        a regular structure can compute a batch with numpy indexing. Used only after it
        reproduced the per-arch features exactly; it may raise ValueError, KeyError or
        IndexError on input it cannot handle.
        """
        return None

    def block_keys(self, arch: Arch) -> list[str]:
        """The blocks `arch` executes, in order, as lookup-table keys (default: none).

        Spaces that set `has_blocks` return one key per executed block, so that a subnet's
        latency can be estimated as the sum of its blocks' measured latencies.
        """
        return []

    def few_shot_choices(self) -> tuple[Choice, ...]:
        """The decisions few-shot NAS may split this space's supernet on (default: none).

        Each must be taken by every subnet (never a block that depth may skip), so that the
        sub-supernet holding a subnet is a function of the network it runs.
        """
        return ()

    def block_key_universe(self, resolutions: Sequence[int] | None = None) -> list[str]:
        """Every block key a subnet can produce at `resolutions` (default: none)."""
        return []

    def build_network(self, arch: Arch) -> nn.Module:
        """A stand-alone network of `arch` with fresh weights, for training it alone.

        Default: the subnet extracted from a newly initialised supernet (so it starts from
        the supernet's initialisation). Spaces with a dedicated evaluation network (DARTS'
        deeper, wider one) override this.
        """
        return self.build_supernet().extract_subnet(arch)
