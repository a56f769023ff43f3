"""Subnet samplers for supernet training: `uniform` and `complexity` (uniform over MACs bins).

Uniform sampling of a large space picks mid-sized subnets almost always (the MACs of a random
subnet concentrate around the mean), so the smallest and largest regions get few updates.
The complexity sampler (AttentiveNAS, ElasticViT, ShiftNAS) first picks a MACs bin uniformly,
then a subnet inside that bin, so every size range is trained alike.

Samplers draw from the generator they are given; the training loop derives that generator from
(seed, step), which is what makes a resumed run draw exactly the subnets a straight run draws.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from nas.arch import Arch
from nas.data import BatchLoader
from nas.errors import ConfigError
from search_spaces.base import SearchSpace

ALL = ("*",)


def restrict(arch: Arch, largest: Arch, unlock: Sequence[str]) -> dict[str, Any]:
    """`arch` with every key not in `unlock` reset to the largest subnet's value.

    Progressive shrinking trains a sub-space: keys that are still locked stay at their maximum.
    `("*",)` unlocks everything.
    """
    if "*" in unlock:
        return dict(arch)
    return {key: (value if key in unlock else largest[key]) for key, value in arch.items()}


def with_resolution(arch: Arch, resolution: int) -> dict[str, Any]:
    """A copy of `arch` at `resolution` (unchanged for spaces without elastic resolution)."""
    out = dict(arch)
    if "resolution" in out:
        out["resolution"] = int(resolution)
    return out


class SubnetSampler(abc.ABC):
    """Draws training subnets of `space` at one of `resolutions`.

    Args:
        space: the search space.
        resolutions: input sizes to draw from (used when archs carry a `resolution`).
        seed: seeds any precomputation (the complexity sampler's pool), not the draws.
    """

    kind: str = ""

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int], seed: int) -> None:
        self.space = space
        self.resolutions = tuple(int(r) for r in resolutions)
        self.seed = seed
        self._largest = space.largest()

    def largest(self) -> dict[str, Any]:
        return with_resolution(self._largest, max(self.resolutions))

    def smallest(self) -> dict[str, Any]:
        return with_resolution(self.space.smallest(), min(self.resolutions))

    def _uniform(self, rng: np.random.Generator, unlock: Sequence[str]) -> dict[str, Any]:
        if "*" in unlock:
            return with_resolution(self.space.sample(rng), int(rng.choice(self.resolutions)))
        # Resampling every choice of the largest subnet (rather than `sample()`) keeps per-block
        # choices unbiased when depth stays locked: a sampled shallow stage would carry only
        # placeholder values for the blocks it skips.
        arch = self.space.mutate(self._largest, rng, prob=1.0)
        arch = with_resolution(arch, int(rng.choice(self.resolutions)))
        return self.space.normalize(restrict(arch, self.largest(), unlock))

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, *, unlock: Sequence[str] = ALL) -> dict[str, Any]:
        """One subnet whose keys outside `unlock` are at their largest value."""

    # -- hooks of importance samplers (PA&DA, nas/train/pada.py); no-ops here -------------
    def attach(self, loader: BatchLoader) -> None:  # noqa: B027 (optional hook)
        """Called once with the training loader (a sampler may take over its order)."""

    def observe_step(  # noqa: B027 (optional hook)
        self, archs: Sequence[Arch], grad_norm: float, ids: torch.Tensor | None,
        scores: torch.Tensor | None,
    ) -> None:
        """After a step's backward: the random subnets trained, the gradient norm, the batch's
        image indices and per-image gradient norms."""

    @property
    def observes(self) -> bool:
        """Whether `observe_step` wants the step's gradient norm and per-image scores."""
        return type(self).observe_step is not SubnetSampler.observe_step

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """After epoch `epoch`; returns values to log (none by default)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Plain-typed state stored in checkpoints."""
        return {"kind": self.kind, "seed": self.seed, "resolutions": list(self.resolutions)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ConfigError(
                f"checkpoint sampler is '{state.get('kind')}', this run uses '{self.kind}'"
            )


class UniformSampler(SubnetSampler):
    """Each choice (and the resolution) uniformly at random."""

    kind = "uniform"

    def sample(self, rng: np.random.Generator, *, unlock: Sequence[str] = ALL) -> dict[str, Any]:
        return self._uniform(rng, unlock)


class ComplexitySampler(SubnetSampler):
    """Uniform over `bins` equal-width MACs bins spanning what random subnets reach.

    A pool of `pool_size` uniformly drawn subnets (seeded, one pool per set of unlocked keys)
    fixes the bin edges, from the smallest subnet's MACs to the pool's largest (random subnets
    of a large space never come near the largest subnet, so bins up to it would stay empty),
    and shows which bins are reachable (at least two members, so a lone outlier does not get a
    bin's share of the draws). A draw picks a reachable bin, rejection-samples up to
    `max_tries` fresh subnets and otherwise takes a pool member of that bin, so every draw
    costs a bounded number of `complexity()` calls.
    """

    kind = "complexity"

    def __init__(
        self,
        space: SearchSpace,
        *,
        resolutions: Sequence[int],
        seed: int,
        bins: int = 8,
        pool_size: int = 512,
        max_tries: int = 12,
    ) -> None:
        super().__init__(space, resolutions=resolutions, seed=seed)
        self.bins = bins
        self.pool_size = pool_size
        self.max_tries = max_tries
        self.counts = np.zeros(bins, dtype=np.int64)
        self._pools: dict[tuple[str, ...], tuple[np.ndarray, list[list[dict[str, Any]]]]] = {}

    def macs(self, arch: Arch) -> int:
        return int(self.space.complexity(arch)["macs"])

    def edges(self, unlock: Sequence[str] = ALL) -> np.ndarray:
        """The `bins + 1` MACs bin edges used for subnets of the `unlock` sub-space."""
        return self._pool(unlock)[0]

    def bin_of(self, macs: float, unlock: Sequence[str] = ALL) -> int:
        """Index of the bin holding `macs` (clipped to the first/last bin)."""
        index = int(np.searchsorted(self.edges(unlock), macs, side="right")) - 1
        return min(max(index, 0), self.bins - 1)

    def _pool(self, unlock: Sequence[str]) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        key = tuple(sorted(unlock))
        if key not in self._pools:
            # its own stream: building a pool must not shift the training draws
            rng = np.random.default_rng([self.seed, 0xC0FFEE, len(self._pools)])
            archs = [self._uniform(rng, unlock) for _ in range(self.pool_size)]
            macs = np.array([self.macs(arch) for arch in archs], dtype=np.float64)
            low = min(float(macs.min()), float(self.macs(self.smallest())))
            edges = np.linspace(low, float(macs.max()), self.bins + 1)
            members: list[list[dict[str, Any]]] = [[] for _ in range(self.bins)]
            for arch, value in zip(archs, macs, strict=True):
                index = int(np.searchsorted(edges, value, side="right")) - 1
                members[min(max(index, 0), self.bins - 1)].append(arch)
            self._pools[key] = (edges, members)
        return self._pools[key]

    def sample(self, rng: np.random.Generator, *, unlock: Sequence[str] = ALL) -> dict[str, Any]:
        _, pool = self._pool(unlock)
        reachable = [index for index, members in enumerate(pool) if len(members) >= 2]
        reachable = reachable or [index for index, members in enumerate(pool) if members]
        target = int(rng.choice(reachable))
        for _ in range(self.max_tries):
            arch = self._uniform(rng, unlock)
            if self.bin_of(self.macs(arch), unlock) == target:
                break
        else:
            members = pool[target]
            arch = dict(members[int(rng.integers(len(members)))])
        self.counts[target] += 1
        return arch

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(bins=self.bins, counts=[int(c) for c in self.counts])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        counts = state.get("counts", [])
        if len(counts) == self.bins:
            self.counts = np.asarray(counts, dtype=np.int64)


# Samplers defined in modules that build on this one (nas/train/pada.py registers "pada").
_REGISTERED: dict[str, Callable[..., SubnetSampler]] = {}


def register_sampler(kind: str, factory: Callable[..., SubnetSampler]) -> None:
    """Offer `kind` to `make_sampler` (called with space, resolutions, seed and epochs)."""
    _REGISTERED[kind] = factory


def make_sampler(
    kind: str, space: SearchSpace, *, resolutions: Sequence[int], seed: int, bins: int = 8,
    epochs: int = 1,
) -> SubnetSampler:
    """The sampler called `kind` ("uniform", "complexity" or "pada"; `epochs`: pada's)."""
    if kind == "uniform":
        return UniformSampler(space, resolutions=resolutions, seed=seed)
    if kind == "complexity":
        return ComplexitySampler(space, resolutions=resolutions, seed=seed, bins=bins)
    if kind in _REGISTERED:
        return _REGISTERED[kind](space, resolutions=resolutions, seed=seed, epochs=epochs)
    raise ConfigError(f"sampler: expected 'uniform', 'complexity' or 'pada', got '{kind}'")
