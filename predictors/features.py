"""From subnet configs to predictor features: the encoding plus counts of executed blocks.

The featurizer is fixed when a predictor is fitted (its key list is saved with it), so the
count columns mean the same thing at fit and at predict time. Prediction cost is dominated by
this step (python per arch) unless the space computes a batch at once
(`SearchSpace.batch_features`); predictors themselves are a few matrix products over a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from nas.arch import Arch
from nas.errors import InvalidArchError
from predictors.base import Features
from predictors.structure import describer_for
from search_spaces.base import BatchFeatures, SearchSpace

logger = logging.getLogger(__name__)

# probe subnets a space's vectorised features must reproduce exactly before they are used
VERIFY_SAMPLES = 64


def encode_batch(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """`(n, dim)` float32 encodings of `archs`."""
    return np.asarray(space.encode_batch(archs), dtype=np.float32)


def key_universe(
    space: SearchSpace, resolutions: Sequence[int], extra: Iterable[str] = ()
) -> list[str]:
    """Every block key the space can produce at `resolutions`, plus `extra` keys, sorted."""
    return sorted(set(space.block_key_universe(list(resolutions))) | set(extra))


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
        self.uses_blocks = bool(self.keys) and space.has_blocks
        self.describer = describer_for(space, self.keys)

    def counts(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.zeros((len(archs), len(self.keys)), dtype=np.float32)
        if not self.uses_blocks:
            return out
        index = self.index
        for row, arch in enumerate(archs):
            for key in self.space.block_keys(arch):
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
        return Features(encode_batch(self.space, archs), self.counts(archs), self.describer)


class BatchFeaturizer(Featurizer):
    """The same features, computed for a whole batch by the space's `batch_features`."""

    def __init__(self, space: SearchSpace, keys: Sequence[str], batch: BatchFeatures) -> None:
        super().__init__(space, keys)
        self.batch = batch

    def transform(self, archs: Sequence[Arch]) -> Features:
        """Features of canonical archs; unexpected input takes the generic path."""
        try:
            encoded, counts = self.batch(archs)
        except (ValueError, KeyError, TypeError, IndexError):
            for arch in archs:
                self.space.validate(arch)  # raises InvalidArchError naming the bad key
            return super().transform(archs)
        return Features(encoded, counts, self.describer)


def make_featurizer(space: SearchSpace, keys: Sequence[str]) -> Featurizer:
    """The fastest featurizer that gives exactly the generic features for `space`."""
    generic = Featurizer(space, keys)
    if not generic.uses_blocks:
        return generic
    try:
        batch = space.batch_features(keys)
        if batch is None:
            return generic
        rng = np.random.default_rng(0)
        probe = [space.largest(), space.smallest()]
        probe += [space.sample(rng) for _ in range(VERIFY_SAMPLES)]
        want, (encoded, counts) = generic.transform(probe), batch(probe)
        if np.array_equal(want.encoded, encoded) and np.array_equal(want.counts, counts):
            return BatchFeaturizer(space, keys, batch)
        logger.info("%s: vectorised features disagree with the generic ones; not used",
                    space.name)
    except (ValueError, KeyError, IndexError, StopIteration) as exc:
        logger.info("%s: vectorised features not available: %s", space.name, exc)
    return generic
