from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nas.errors import ConfigError, InvalidArchError
from search_spaces import create_space
from search_spaces.ofa_mbv3.layout import parse_key
from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space


@pytest.fixture(scope="module")
def space() -> OFAMobileNetV3Space:
    return OFAMobileNetV3Space.tiny()


@pytest.fixture(scope="module")
def net(space: OFAMobileNetV3Space) -> Any:
    torch.manual_seed(0)
    supernet = space.build_supernet()
    perturb(supernet, torch.Generator().manual_seed(1))
    return supernet


@torch.no_grad()
def perturb(net: torch.nn.Module, generator: torch.Generator) -> None:
    """Make BN statistics and kernel transforms non-trivial so slicing bugs show."""
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if name.endswith(("running_mean", "bias")) or "transforms" in name:
            tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
        elif name.endswith("running_var"):
            tensor.mul_(torch.rand(tensor.shape, generator=generator) + 0.5)


def bad(arch: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = {k: list(v) if isinstance(v, list) else v for k, v in arch.items()}
    if "[" in key:
        name, index = key.rstrip("]").split("[")
        changed[name][int(index)] = value
    else:
        changed[key] = value
    return changed


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kernel_size[4]", 4),
        ("expand_ratio[19]", 5),
        ("depth[2]", 1),
        ("resolution", 224),
        ("depth", [2, 3]),
        ("kernel_size", "7"),
    ],
)
def test_bad_configs_name_the_key(space: OFAMobileNetV3Space, key: str, value: Any) -> None:
    expected = key.split("[")[0] if isinstance(value, list | str) else key
    with pytest.raises(InvalidArchError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        space.normalize(bad(space.largest(), key, value))


def test_unknown_and_missing_keys(space: OFAMobileNetV3Space) -> None:
    with pytest.raises(InvalidArchError, match="kernel"):
        space.validate({**space.largest(), "kernel": 3})
    arch = space.largest()
    del arch["depth"]
    with pytest.raises(InvalidArchError, match="depth"):
        space.validate(arch)


def test_bad_construction() -> None:
    with pytest.raises(ConfigError, match="width_mult"):
        create_space("ofa-mbv3", width_mult=0.75)


def test_inactive_blocks_are_normalised(space: OFAMobileNetV3Space) -> None:
    a, b = space.smallest(), space.smallest()
    b["kernel_size"][3], b["expand_ratio"][7] = 7, 6  # blocks that do not run at depth 2
    assert space.normalize(b) == a
    assert space.encode(space.normalize(b)).tolist() == space.encode(a).tolist()


def test_small_input_strides() -> None:
    small = create_space("ofa-mbv3", num_classes=10, image_size=32)
    big = create_space("ofa-mbv3", num_classes=10, image_size=224)
    assert small.small_input and not big.small_input
    assert small.layers(small.largest())[-1].resolution == 4  # 32 / 8
    assert big.layers(big.largest())[-1].resolution == 7  # 224 / 32
    eight = create_space("ofa-mbv3", num_classes=10, image_size=8)
    assert eight.layers(eight.smallest())[-1].resolution == 1


def test_describe_counts_subnets(space: OFAMobileNetV3Space) -> None:
    info = space.describe()
    assert info["num_subnets"] == (81 + 729 + 6561) ** 5 * 2
    assert info["stage_widths"] == [24, 40, 80, 112, 160]


def test_reorganize_channels_preserves_the_largest_subnet(space: OFAMobileNetV3Space) -> None:
    torch.manual_seed(0)
    net = space.build_supernet()
    perturb(net, torch.Generator().manual_seed(2))
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        net.reorganize_channels()
        after = net(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    block = net.blocks[0]
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_extract_matches_active_with_perturbed_weights(
    space: OFAMobileNetV3Space, net: Any
) -> None:
    rng = np.random.default_rng(5)
    for arch in [space.smallest(), space.sample(rng), space.sample(rng)]:
        net.set_active(arch)
        net.eval()
        side = net.input_resolution(arch)
        x = torch.randn(2, 3, side, side)
        with torch.no_grad():
            expected = net(x)
            got = net.extract_subnet(arch).eval()(x)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert net.active() == space.normalize(arch)


def test_extract_keeps_active_selection(space: OFAMobileNetV3Space, net: Any) -> None:
    net.set_active(space.smallest())
    net.extract_subnet(space.largest())
    assert net.active() == space.smallest()


def test_training_mode_forward_backward(space: OFAMobileNetV3Space, net: Any) -> None:
    net.train()
    net.set_active({**space.sample(np.random.default_rng(9)), "depth": [3, 2, 4, 3, 2]})
    loss = net(torch.randn(4, 3, 16, 16)).square().mean()
    loss.backward()
    assert net.blocks[0].depthwise.weight.grad is not None
    assert net.blocks[19].expand_conv.weight.grad is None  # block 19 does not run at depth < 4
    net.zero_grad(set_to_none=True)


def test_block_keys_cover_the_subnet(space: OFAMobileNetV3Space, net: Any) -> None:
    rng = np.random.default_rng(4)
    universe = set(space.block_key_universe())
    assert len(universe) <= 93 * len(space.resolutions)
    for arch in [space.largest(), space.smallest(), space.sample(rng)]:
        keys = space.block_keys(arch)
        assert len(keys) == 2 + sum(arch["depth"]) + 1
        assert set(keys) <= universe
        params = 0
        for key in keys:
            module, shape = net.block_module(key)
            assert parse_key(key).key() == key
            with torch.no_grad():
                module.eval()(torch.zeros(shape))
            params += sum(p.numel() for p in module.parameters())
        assert params == space.complexity(arch)["params"]


def test_complexity_is_fast(space: OFAMobileNetV3Space) -> None:
    import time

    archs = [space.sample(np.random.default_rng(i)) for i in range(500)]
    start = time.perf_counter()
    for arch in archs:
        space.complexity(arch)
    assert (time.perf_counter() - start) / len(archs) < 1e-3


def test_numpy_and_float_values_normalise_to_python_ints(space: OFAMobileNetV3Space) -> None:
    arch = space.largest()
    given = {
        **arch,
        "kernel_size": list(np.array(arch["kernel_size"])),
        "expand_ratio": [float(e) for e in arch["expand_ratio"]],
        "resolution": np.int64(arch["resolution"]),
    }
    normalised = space.normalize(given)
    assert normalised == arch
    assert all(type(k) is int for k in normalised["kernel_size"])
    with pytest.raises(InvalidArchError, match=r"expand_ratio\[0\]"):
        space.normalize({**arch, "expand_ratio": [3.5] * 20})


def test_reorganize_keeps_trained_expand_groups(space: OFAMobileNetV3Space) -> None:
    torch.manual_seed(0)
    net = space.build_supernet()
    block = net.blocks[4]  # stage 1, in 24 channels: mid(4) = 96, mid(6) = 144
    with torch.no_grad():
        block.project.weight[:, 100:].mul_(50.0)  # outer channels look most important
    inner = set(block.project.weight[:, :96].abs().sum(dim=(0, 2, 3)).tolist())
    net.reorganize_channels(trained_ratios=[4, 6])
    kept = block.project.weight[:, :96].abs().sum(dim=(0, 2, 3))
    assert set(kept.tolist()) == inner  # the e=4 subnet keeps its channels
    assert torch.all(kept[:-1] >= kept[1:])  # sorted within the group
    net.reorganize_channels()  # one global sort: the 44 scaled channels come first
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    assert importance[:44].min() > importance[44:].max()
