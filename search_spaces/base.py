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
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nas.arch import Arch

if TYPE_CHECKING:
    import optuna

    from nas.supernet.base import Supernet


class SearchSpace(abc.ABC):
    """Base class of every registered search space."""

    name: ClassVar[str]
    encoding_version: ClassVar[int]
    # Which trainers train this space's supernet (`nas.train.registry` maps a family to its
    # methods): "once-for-all" for elastic weight-sharing supernets (sandwich, progressive
    # shrinking), "darts" for cells with architecture weights (bilevel methods). A family
    # without trainers (a tabular space) cannot be trained.
    family: ClassVar[str] = "once-for-all"

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
