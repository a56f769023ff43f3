"""ofa-resnet50: parity with Once-for-All, OFA-format configs, block keys, channel sorting.

OFA_RESNET_REFERENCE holds REFERENCE VALUES FROM THE PEER, not our own output: parameter counts
of OFA's `OFAResNets(depth_list=[0,1,2], expand_ratio_list=[0.2,0.25,0.35],
width_mult_list=[0.65,0.8,1.0]).get_active_subnet()` printed by `bench/ofa_param_reference.py`
(run with `the peers venv's python`, OFA 0.1.0.post202307202001).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nas.errors import InvalidArchError
from search_spaces import create_space
from search_spaces.ofa_format import resnet_to_ofa
from search_spaces.ofa_resnet50.space import OFAResNet50Space

RANDOM0 = {
    "d": [0, 2, 0, 1, 0],
    "e": [
        0.25,
        0.25,
        0.25,
        0.35,
        0.25,
        0.2,
        0.2,
        0.25,
        0.2,
        0.25,
        0.25,
        0.35,
        0.2,
        0.35,
        0.25,
        0.25,
        0.35,
        0.2,
    ],
    "w": [2, 0, 1, 0, 0, 0],
}
OFA_RESNET_REFERENCE = [
    (1000, {"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6}, 48105992),
    (1000, {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6}, 6539280),
    (1000, RANDOM0, 8961624),
    (10, {"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6}, 46077482),
    (10, {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6}, 5223570),
    (10, RANDOM0, 7645914),
]


@pytest.mark.parametrize(("classes", "config", "expected"), OFA_RESNET_REFERENCE)
def test_params_match_ofa(classes: int, config: dict[str, Any], expected: int) -> None:
    space = create_space("ofa-resnet50", num_classes=classes)
    assert space.complexity(space.normalize(config))["params"] == expected


@pytest.mark.slow
def test_extracted_params_match_ofa() -> None:
    space = create_space("ofa-resnet50", num_classes=10, image_size=32)
    subnet = space.build_supernet().extract_subnet(space.normalize(RANDOM0))
    assert sum(p.numel() for p in subnet.parameters()) == 7645914


def test_ofa_format_round_trip() -> None:
    space = OFAResNet50Space.tiny()
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = space.sample(rng)
        ofa = resnet_to_ofa(arch, width_mult_list=(0.65, 0.8, 1.0), max_depth=2)
        assert space.normalize(ofa) == arch
    assert space.normalize({**RANDOM0, "d": [1, *RANDOM0["d"][1:]]})["stem_residual"] is False


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"w": [3, 0, 0, 0, 0, 0]}, r"w\[0\]"),
        ({"d": [2, 2, 2]}, "d"),
        ({"e": [0.3] * 18}, r"expand_ratio\[0\]"),
    ],
)
def test_bad_ofa_configs_name_the_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidArchError, match=key):
        OFAResNet50Space.tiny().normalize({**RANDOM0, **change})


def test_stem_flag_must_be_bool() -> None:
    space = OFAResNet50Space.tiny()
    with pytest.raises(InvalidArchError, match="stem_residual"):
        space.validate({**space.largest(), "stem_residual": 1})


def test_block_keys_and_universe() -> None:
    space = OFAResNet50Space.tiny()
    net = space.build_supernet()
    universe = set(space.block_key_universe())
    rng = np.random.default_rng(2)
    for arch in [space.largest(), space.smallest(), space.sample(rng), space.sample(rng)]:
        keys = space.block_keys(arch)
        assert set(keys) <= universe
        params = 0
        for key in keys:
            module, shape = net.block_module(key)
            with torch.no_grad():
                module.eval()(torch.zeros(shape))
            params += sum(p.numel() for p in module.parameters())
        assert params == space.complexity(arch)["params"]


def test_reorganize_preserves_largest_and_big_input_path() -> None:
    space = create_space(
        "ofa-resnet50", num_classes=5, image_size=96, small_input=False, width_scale=0.125
    )
    net = space.build_supernet().eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        before = net(x)
        net.reorganize_channels()
        torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-5)
        arch = space.sample(np.random.default_rng(0))
        net.set_active(arch)
        torch.testing.assert_close(
            net.extract_subnet(arch).eval()(x), net(x), rtol=1e-4, atol=1e-5
        )
