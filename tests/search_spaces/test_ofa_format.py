from __future__ import annotations

import numpy as np
import pytest

from nas.errors import InvalidArchError
from search_spaces import create_space
from search_spaces.ofa_format import is_ofa_format, make_divisible, mbv3_to_ofa


def test_make_divisible_matches_ofa_rounding() -> None:
    # values worked out by hand from OFA's rule (never more than 10% below the input)
    assert make_divisible(16 * 1.2) == 24
    assert make_divisible(16) == 16
    assert make_divisible(24 * 1.2) == 32
    assert make_divisible(40 * 1.2) == 48
    assert make_divisible(3.0) == 8


def test_ofa_format_round_trip() -> None:
    space = create_space("ofa-mbv3", num_classes=10, resolutions=[16, 32])
    rng = np.random.default_rng(3)
    for _ in range(5):
        arch = space.sample(rng)
        ofa = mbv3_to_ofa(arch)
        assert set(ofa) == {"ks", "e", "d", "r"} and is_ofa_format(ofa)
        assert space.normalize(ofa) == arch


def test_ofa_format_variants_accepted() -> None:
    space = create_space("ofa-mbv3", num_classes=10, image_size=32)
    ofa = {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5}
    arch = space.normalize({**ofa, "r": [32], "w": 1.0, "wid": None})
    assert arch == space.normalize(ofa)
    assert arch["resolution"] == 32
    assert arch["kernel_size"][3] == 3  # block 3 of stage 0 does not run: normalised
    assert arch["kernel_size"][2] == 5


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "w": 1.2}, "w"),
        ({"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": [16, 32]}, "r"),
        ({"ks": [5] * 20, "e": [4] * 20}, "d"),
        ({"ks": [4] * 20, "e": [4] * 20, "d": [3] * 5}, "kernel_size[0]"),
    ],
)
def test_bad_ofa_configs_name_the_key(config: dict[str, object], key: str) -> None:
    space = create_space("ofa-mbv3", num_classes=10, image_size=32)
    with pytest.raises(InvalidArchError, match=key.replace("[", r"\[").replace("]", r"\]")):
        space.normalize(config)
