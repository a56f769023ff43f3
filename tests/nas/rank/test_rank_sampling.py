"""Size-stratified sampling: distinct, balanced over bins, seeded, optionally from a table."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.rank.sampling import _quotas, sample_by_size
from search_spaces import create_space

SPACE = create_space("nb201")


def test_samples_are_distinct_balanced_and_ordered_by_size() -> None:
    subnets = sample_by_size(SPACE, 40, np.random.default_rng(0), bins=4, pool_size=1500)
    assert len({s.arch_id for s in subnets}) == 40
    per_bin = Counter(s.bin for s in subnets)
    assert sorted(per_bin) == [0, 1, 2, 3] and set(per_bin.values()) == {10}
    largest_of = {b: max(s.params for s in subnets if s.bin == b) for b in per_bin}
    smallest_of = {b: min(s.params for s in subnets if s.bin == b) for b in per_bin}
    assert all(largest_of[b] <= smallest_of[b + 1] for b in range(3))
    for s in subnets:
        assert SPACE.complexity(s.arch) == {"params": s.params, "macs": s.macs}
        SPACE.validate(s.arch)


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    def ids(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [s.arch_id for s in sample_by_size(SPACE, 12, rng, pool_size=500)]

    assert ids(3) == ids(3)
    assert ids(3) != ids(4)


def test_candidates_restrict_the_sample() -> None:
    rng = np.random.default_rng(1)
    table = [SPACE.sample(rng) for _ in range(60)]
    subnets = sample_by_size(SPACE, 20, np.random.default_rng(2), bins=3, candidates=table)
    allowed = {tuple(sorted(a.items())) for a in table}
    assert all(tuple(sorted(s.arch.items())) in allowed for s in subnets)
    assert len({s.arch_id for s in subnets}) == 20


def test_tied_sizes_merge_bins_instead_of_leaving_them_empty() -> None:
    # two sizes only: the smallest cell and the largest, so five quantile bins collapse to two
    table = [SPACE.smallest(), SPACE.largest()] * 3
    subnets = sample_by_size(SPACE, 2, np.random.default_rng(0), bins=5, candidates=table)
    assert sorted(s.bin for s in subnets) == [0, 1]


@pytest.mark.parametrize(
    ("sizes", "count", "expected"),
    [([10, 10, 10], 10, [3, 3, 4]), ([1, 50, 50], 10, [1, 4, 5]), ([2, 9, 3], 14, [2, 9, 3])],
)
def test_a_short_bin_passes_its_shortfall_on(sizes: list[int], count: int, expected: list[int]):
    assert _quotas(sizes, count) == expected


def test_too_few_distinct_subnets_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least 5 distinct subnets to choose from, got 2"):
        sample_by_size(
            SPACE,
            5,
            np.random.default_rng(0),
            candidates=[SPACE.largest()] * 2 + [SPACE.smallest()],
        )
    with pytest.raises(ConfigError, match="count >= 1"):
        sample_by_size(SPACE, 0, np.random.default_rng(0))
