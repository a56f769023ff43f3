"""The nb201 space: benchmark strings, size, analytic complexity (supernet: see
test_nb201_supernet.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import InvalidArchError
from search_spaces import create_space
from search_spaces.nb201 import NB201Space, from_string, to_string
from search_spaces.nb201.cells import KEYS, OPS

EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def test_registered_and_counts_15625_cells() -> None:
    space = create_space("nb201")
    assert isinstance(space, NB201Space)
    assert space.describe()["num_subnets"] == 15_625 == len(OPS) ** len(KEYS)


def test_string_round_trip_of_the_benchmark_example() -> None:
    space = NB201Space()
    arch = space.normalize(EXAMPLE)
    assert arch["edge_2_1"] == "avg_pool_3x3" and arch["edge_3_2"] == "skip_connect"
    assert to_string(arch) == EXAMPLE


def test_string_round_trip_random_cells() -> None:
    space, rng = NB201Space(), np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.normalize(to_string(arch)) == arch
        assert from_string(to_string(arch)) == arch
        assert space.normalize([arch[k] for k in KEYS]) == arch  # list form too


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 nodes"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|a~0|b~1|c~2|", "node 2 expects 2"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge_1_0 must be one of"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "j < 1"),
    ],
)
def test_bad_strings_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        NB201Space().normalize(text)


def test_complexity_matches_the_benchmark() -> None:
    space = NB201Space()
    largest = space.complexity(space.largest())
    # NAS-Bench-201 lists 1.531546 MB params and ~220.11 M FLOPs for the all-3x3 cell
    assert largest["params"] == 1_531_546
    assert largest["macs"] == pytest.approx(220.11e6, rel=1e-3)
    smallest = space.complexity(space.smallest())
    assert smallest["params"] == 73_306 and smallest["macs"] < largest["macs"]


def test_mutate_with_prob_one_changes_every_edge() -> None:
    space, rng = NB201Space(), np.random.default_rng(1)
    arch = space.sample(rng)
    child = space.mutate(arch, rng, prob=1.0)
    assert all(child[k] != arch[k] for k in KEYS)


def test_builds_a_supernet_with_the_largest_subnet_active() -> None:
    space = NB201Space.tiny()
    net = space.build_supernet()
    assert net.space is space and net.active() == space.largest()
