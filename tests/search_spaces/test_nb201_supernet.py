"""The nb201 supernet: single path, extraction, exact complexity, the grouped cell's maths."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.errors import ConfigError
from search_spaces.nb201 import NB201Space
from search_spaces.nb201.cells import EDGES, KEYS
from search_spaces.nb201.network import StaticCell
from search_spaces.nb201.search_cell import CONV_OPS, SearchCell, live_nodes, single_path_plan
from search_spaces.nb201.supernet import NB201Supernet, subnet_state

# node 1 unreached (edge_1_0 none) but read by convolutions; node 2 a dead end
ZERO_NODE = {"edge_1_0": "none", "edge_2_0": "avg_pool_3x3", "edge_2_1": "nor_conv_3x3",
             "edge_3_0": "skip_connect", "edge_3_1": "nor_conv_1x1", "edge_3_2": "none"}
# node 0 feeds three 3x3 convolutions, node 1 two 1x1 ones: groups of 3 and 2
GROUPED = {"edge_1_0": "nor_conv_3x3", "edge_2_0": "nor_conv_3x3", "edge_2_1": "nor_conv_1x1",
           "edge_3_0": "nor_conv_3x3", "edge_3_1": "nor_conv_1x1", "edge_3_2": "avg_pool_3x3"}


def tiny() -> NB201Space:
    return NB201Space(channels=4, cells_per_stage=1, image_size=16)


def archs(space: NB201Space, n: int = 6) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [ZERO_NODE, GROUPED, space.largest(), space.smallest(),
            *(space.sample(rng) for _ in range(n))]


def images(n: int = 4, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def trained(space: NB201Space, steps: int = 3) -> NB201Supernet:
    """A supernet after a few single-path steps: BN statistics and weights off their init."""
    torch.manual_seed(0)
    net = space.build_supernet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    for step in range(steps):
        net.set_active(space.sample(rng))
        net(images(seed=step)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return net


@pytest.mark.parametrize("which", [0, 1, 2, -1])
def test_extract_equals_active_in_eval_mode(which: int) -> None:
    space = tiny()
    net = trained(space)
    arch = archs(space)[which]  # node 1 unreached, grouped convs, largest, random
    net.set_active(arch)
    net.eval()
    with torch.no_grad():
        expected = net(images())
        subnet = net.extract_subnet(arch)
        assert not subnet.training
        got = subnet(images())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert net.active() == arch


def test_extracted_params_and_macs_equal_complexity() -> None:
    space = NB201Space(channels=8, cells_per_stage=2, image_size=16, num_classes=7)
    net = space.build_supernet()
    for arch in archs(space, 10):
        subnet = net.extract_subnet(arch)
        assert sum(p.numel() for p in subnet.parameters()) == space.complexity(arch)["params"]
        assert space.build_network(arch).state_dict().keys() == subnet.state_dict().keys()


def test_default_network_has_the_benchmark_size() -> None:
    space = NB201Space()
    network = space.build_network(space.largest())
    assert sum(p.numel() for p in network.parameters()) == 1_531_546
    assert len(network.cells) == 17  # 3 x 5 cells + 2 ResNet blocks


def test_gradients_reach_only_the_active_ops() -> None:
    space = tiny()
    for arch in archs(space, 4):
        net = space.build_supernet()
        net.set_active(arch)
        net(images()).sum().backward()
        live = live_nodes(arch)
        for cell in (m for m in net.modules() if isinstance(m, SearchCell)):
            for (i, j), key in zip(EDGES, KEYS, strict=True):
                for op in CONV_OPS:
                    grad = cell.conv(i, j, op)[1].weight.grad
                    if arch[key] == op and i in live:  # zero if node j is unreached
                        assert grad is not None, (key, op)
                    else:
                        assert grad is None, (arch, key, op)


def _cell_state(cell: SearchCell) -> dict[str, Any]:
    return {f"cells.0.{key}": value for key, value in cell.state_dict().items()}


def _copy_into_static(cell: SearchCell, arch: dict[str, Any]) -> StaticCell:
    static = StaticCell(arch, cell.channels)
    mapped = subnet_state(_cell_state(cell), arch)
    static.load_state_dict({k.removeprefix("cells.0."): v for k, v in mapped.items()})
    return static


@pytest.mark.parametrize("momentum", [0.1, None])
def test_grouped_cell_trains_exactly_like_the_per_edge_cell(momentum: float | None) -> None:
    """Same outputs, input and weight gradients, and BN running statistics (after two steps,
    so `num_batches_tracked` and the cumulative average matter) as the plain per-edge cell;
    ops into dead-end nodes are not run (no gradient, statistics untouched)."""
    torch.manual_seed(0)
    for arch in archs(tiny(), 6):
        cell = SearchCell(4)
        cell.plan = single_path_plan(arch)
        static = _copy_into_static(cell, arch)
        for layer in (*cell.modules(), *static.modules()):
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum = momentum
        for seed in (0, 1):
            generator = torch.Generator().manual_seed(seed)
            x = torch.randn(2, 4, 8, 8, generator=generator).requires_grad_(True)
            x_static = x.detach().clone().requires_grad_(True)
            out, out_static = cell(x), static(x_static)
            torch.testing.assert_close(out, out_static, rtol=1e-4, atol=1e-5)
            grad = torch.randn(out.shape, generator=generator)
            out.backward(grad)
            out_static.backward(grad)
            assert x.grad is not None and x_static.grad is not None
            torch.testing.assert_close(x.grad, x_static.grad, rtol=1e-4, atol=1e-5)
        mapped = subnet_state(_cell_state(cell), arch)
        live = live_nodes(arch)
        for key, value in static.state_dict().items():
            if int(key.split("_")[1]) in live:  # edges.edge_I_J...: into node I
                torch.testing.assert_close(mapped[f"cells.0.{key}"], value, rtol=1e-4,
                                           atol=1e-5, msg=key)
        grads = dict(cell.named_parameters())
        for key, param in static.named_parameters():  # None on both sides for dead ends
            edge, rest = key.removeprefix("edges.").split(".", 1)
            got = grads[f"edges.{edge}.{arch[edge]}.{rest}"].grad
            assert (got is None) == (param.grad is None), key
            if got is not None:
                torch.testing.assert_close(got, param.grad, rtol=1e-4, atol=1e-5, msg=key)
    assert any(len(live_nodes(a)) < 4 for a in archs(tiny(), 6))  # dead ends were covered


def test_bn_recalibration_of_the_supernet_equals_the_subnets() -> None:
    from nas.supernet.bn import recalibrate_bn

    space = tiny()
    net = trained(space)
    batches = [images(8, seed=s) for s in range(3)]
    for arch in (ZERO_NODE, GROUPED):
        subnet = net.extract_subnet(arch)
        net.set_active(arch)
        recalibrate_bn(net, batches, num_batches=3)
        recalibrate_bn(subnet, batches, num_batches=3)
        net.eval()
        subnet.eval()
        with torch.no_grad():
            torch.testing.assert_close(subnet(images(seed=9)), net(images(seed=9)))


def test_smallest_and_largest_for_the_sandwich_rule() -> None:
    space = tiny()
    costs = [space.complexity(a) for a in archs(space, 20)]
    assert space.complexity(space.largest()) == max(costs, key=lambda c: c["params"])
    assert space.complexity(space.smallest())["params"] == min(c["params"] for c in costs)
    net = space.build_network(space.smallest()).eval()
    with torch.no_grad():  # the smallest subnet still sees its input (all-none would not)
        assert not torch.allclose(net(images(seed=0)), net(images(seed=1)))


def test_static_network_scripts_with_an_unreached_node() -> None:
    network = tiny().build_network(ZERO_NODE).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, still what export writes
        scripted = torch.jit.script(copy.deepcopy(network))
    with torch.no_grad():
        torch.testing.assert_close(scripted(images()), network(images()))


def test_image_size_must_allow_two_reductions() -> None:
    with pytest.raises(ConfigError, match="divisible by 4"):
        NB201Space(image_size=30).build_supernet()


def test_trains_under_bf16_autocast_like_the_subnet() -> None:
    space = tiny()
    net = trained(space)
    subnet = net.extract_subnet(GROUPED).train()
    net.set_active(GROUPED)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, expected = net(images()), subnet(images())
    got.float().sum().backward()
    torch.testing.assert_close(got.float(), expected.float(), rtol=0.05, atol=0.05)
