"""Parameter parity with Once-for-All's own `get_active_subnet()`.

The numbers below are REFERENCE VALUES FROM THE PEER, not our own output: they were produced
by `bench/ofa_param_reference.py` run in the peers venv (`the peers venv's python
bench/ofa_param_reference.py`, OFA 0.1.0.post202307202001, see ../shared/peers/README.md), which
builds OFA's `OFAMobileNetV3`, calls `set_active_subnet(**config)` and counts the parameters of
`get_active_subnet()`. The configs are regenerated here with the same `random.Random(0)` draws.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
import torch

from search_spaces import create_space


def mbv3_configs() -> dict[str, dict[str, Any]]:
    rng = random.Random(0)  # same draws as bench/ofa_param_reference.py
    configs: dict[str, dict[str, Any]] = {
        "max": {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5},
        "min": {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5},
    }
    for name in ("random0", "random1"):
        configs[name] = {
            "ks": [rng.choice([3, 5, 7]) for _ in range(20)],
            "e": [rng.choice([3, 4, 6]) for _ in range(20)],
            "d": [rng.choice([2, 3, 4]) for _ in range(5)],
        }
    return configs


# (width_mult, num_classes, config name, parameters of OFA's get_active_subnet())
OFA_MBV3_REFERENCE = [
    (1.0, 1000, "max", 7664760),
    (1.0, 1000, "min", 3410792),
    (1.0, 1000, "random0", 5316280),
    (1.0, 1000, "random1", 5630936),
    (1.0, 10, "max", 6396570),
    (1.0, 10, "min", 2142602),
    (1.0, 10, "random0", 4048090),
    (1.0, 10, "random1", 4362746),
    (1.2, 1000, "max", 10701632),
    (1.2, 1000, "min", 4602456),
    (1.2, 1000, "random0", 7330976),
    (1.2, 1000, "random1", 7789128),
    (1.2, 10, "max", 9180002),
    (1.2, 10, "min", 3080826),
    (1.2, 10, "random0", 5809346),
    (1.2, 10, "random1", 6267498),
]


def test_reference_configs_match_the_bench_script() -> None:
    # the first random draw of random.Random(0) as recorded by the bench script's output
    assert mbv3_configs()["random0"]["ks"][:5] == [5, 5, 3, 5, 7]


@pytest.mark.parametrize(("width", "classes", "name", "expected"), OFA_MBV3_REFERENCE)
def test_mbv3_analytic_params_match_ofa(
    width: float, classes: int, name: str, expected: int
) -> None:
    space = create_space("ofa-mbv3", num_classes=classes, width_mult=width, image_size=224)
    arch = space.normalize(mbv3_configs()[name])
    assert space.complexity(arch)["params"] == expected


@pytest.mark.parametrize(("width", "name"), [(1.0, "random0"), (1.2, "min")])
def test_mbv3_extracted_params_match_ofa(width: float, name: str) -> None:
    expected = {(w, n): p for w, c, n, p in OFA_MBV3_REFERENCE if c == 10}[(width, name)]
    space = create_space("ofa-mbv3", num_classes=10, width_mult=width, image_size=32)
    subnet = space.build_supernet().extract_subnet(space.normalize(mbv3_configs()[name]))
    assert sum(p.numel() for p in subnet.parameters()) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream
        assert torch.jit.script(subnet) is not None
