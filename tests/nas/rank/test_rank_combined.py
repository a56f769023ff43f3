"""`combined`: rank aggregation of several scorers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.rank.combined import DEFAULT_MEMBERS, average_ranks, rank_average

stats = pytest.importorskip("scipy.stats")


def test_average_ranks_match_scipy_with_ties_and_infinities() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        values = rng.integers(0, 6, 40).astype(float)
        values[:3] = -math.inf  # naswot's singular kernels
        np.testing.assert_allclose(average_ranks(values), stats.rankdata(values))


def test_rank_average_is_the_mean_rank_of_the_members() -> None:
    scores = {"a": [10.0, 20.0, 30.0], "b": [3.0, 1.0, 2.0], "ignored": [0.0, 0.0, 9.0]}
    # ranks: a -> 1, 2, 3; b -> 3, 1, 2
    np.testing.assert_allclose(rank_average(scores, ["a", "b"]), [2.0, 1.5, 2.5])
    np.testing.assert_allclose(rank_average(scores, ["a"]), [1.0, 2.0, 3.0])


def test_default_members_are_registered_proxies() -> None:
    from nas.rank.proxies import PROXIES

    assert all(name in PROXIES for name in DEFAULT_MEMBERS)


@pytest.mark.parametrize(
    ("scores", "members", "message"),
    [
        ({"a": [1.0, 2.0]}, [], "at least one"),
        ({"a": [1.0, 2.0]}, ["a", "b"], "none for b"),
        ({"a": [1.0, 2.0], "b": [1.0]}, ["a", "b"], "a=2, b=1"),
        ({"a": [1.0, math.nan]}, ["a"], "NaN"),
    ],
)
def test_bad_members_or_scores_raise(scores: dict, members: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rank_average(scores, members)
