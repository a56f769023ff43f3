"""From subnet configs to predictor features: the encoding plus counts of executed blocks.

The featurizer is fixed when a predictor is fitted (its key list is saved with it), so the
count columns mean the same thing at fit and at predict time. Prediction cost is dominated by
this step (python per arch); predictors themselves are a few matrix products over a batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from nas.arch import Arch
from nas.errors import InvalidArchError
from predictors.base import Features
from search_spaces.base import SearchSpace


def encode_batch(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """`(n, dim)` float32 encodings; uses the space's own `encode_batch` when it has one."""
    batch = getattr(space, "encode_batch", None)
    if callable(batch):
        return np.asarray(batch(archs), dtype=np.float32)
    out = np.empty((len(archs), space.dim), dtype=np.float32)
    for row, arch in enumerate(archs):
        out[row] = space.encode(arch)
    return out


def has_blocks(space: SearchSpace) -> bool:
    """Whether the space can list the blocks a subnet executes (lookup tables need that)."""
    return callable(getattr(space, "block_keys", None))


def block_keys(space: SearchSpace, arch: Arch) -> list[str]:
    """The block keys `arch` executes, in order (empty for spaces without `block_keys`)."""
    method = getattr(space, "block_keys", None)
    return list(method(arch)) if callable(method) else []


def key_universe(
    space: SearchSpace, resolutions: Sequence[int], extra: Iterable[str] = ()
) -> list[str]:
    """Every block key the space can produce at `resolutions`, plus `extra` keys, sorted."""
    method = getattr(space, "block_key_universe", None)
    keys = set(method(list(resolutions))) if callable(method) else set()
    keys.update(extra)
    return sorted(keys)


class Featurizer:
    """Turns archs of `space` into `Features` with a fixed list of block-key columns.

    Args:
        space: the search space the archs belong to.
        keys: the block keys, one count column each, in this order.
    """

    def __init__(self, space: SearchSpace, keys: Sequence[str]) -> None:
        self.space = space
        self.keys = tuple(keys)
        self.index = {key: column for column, key in enumerate(self.keys)}
        self.uses_blocks = bool(self.keys) and has_blocks(space)

    def counts(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.zeros((len(archs), len(self.keys)), dtype=np.float32)
        if not self.uses_blocks:
            return out
        method: Any = getattr(self.space, "block_keys")  # noqa: B009 - checked in __init__
        index = self.index
        for row, arch in enumerate(archs):
            for key in method(arch):
                column = index.get(key)
                if column is None:
                    raise InvalidArchError(
                        f"block '{key}' was not profiled for this predictor (expected one of "
                        f"{len(self.keys)} profiled blocks, e.g. '{self.keys[0]}'); re-run "
                        "`nas profile` with the resolutions this subnet uses"
                    )
                out[row, column] += 1.0
        return out

    def transform(self, archs: Sequence[Arch]) -> Features:
        """Features of `archs` (canonical, validated archs; use `space.normalize` first)."""
        return Features(encode_batch(self.space, archs), self.counts(archs))


def make_featurizer(space: SearchSpace, keys: Sequence[str]) -> Featurizer:
    """The fastest featurizer that gives exactly the generic features for `space`."""
    from predictors.fast_ofa import fast_featurizer

    return fast_featurizer(space, keys, Featurizer(space, keys))
