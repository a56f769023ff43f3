"""The NB201 mixed supernet: one-hot mixing is the single path, sampling modes, partial
channels, derivation; the sampling bookkeeping of `nas.supernet.differentiable`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.errors import ConfigError
from nas.supernet.differentiable import gumbel_one_hot, gumbel_top_k
from search_spaces.nb201 import NB201Space
from search_spaces.nb201.cells import KEYS, OPS
from search_spaces.nb201.mixed import NODE_ROWS, NB201MixedSupernet

# node 1 unreached but read by convolutions; node 2 a dead end; grouped convolutions
ARCHS = [
    {"edge_1_0": "none", "edge_2_0": "avg_pool_3x3", "edge_2_1": "nor_conv_3x3",
     "edge_3_0": "skip_connect", "edge_3_1": "nor_conv_1x1", "edge_3_2": "none"},
    {"edge_1_0": "nor_conv_3x3", "edge_2_0": "nor_conv_3x3", "edge_2_1": "nor_conv_1x1",
     "edge_3_0": "nor_conv_3x3", "edge_3_1": "nor_conv_1x1", "edge_3_2": "avg_pool_3x3"},
]


def tiny(**kwargs: object) -> NB201MixedSupernet:
    return NB201MixedSupernet(NB201Space(channels=4, cells_per_stage=1, image_size=16),
                              **kwargs)  # type: ignore[arg-type]


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def all_archs() -> list[dict[str, str]]:
    space, rng = NB201Space(), np.random.default_rng(0)
    return [*ARCHS, space.largest(), space.smallest(), *(space.sample(rng) for _ in range(4))]


@pytest.mark.parametrize("train", [False, True])
def test_one_hot_mixing_equals_the_single_path(train: bool) -> None:
    net = tiny()
    net.train(train)
    for arch in all_archs():
        net.set_active(arch)
        single = net(images())
        net.fixed_weights, net.mode = net.arch_weights(arch), "fixed"
        mixed = net(images())
        torch.testing.assert_close(mixed, single, rtol=1e-5, atol=1e-5)


def test_the_single_path_is_the_nb201_supernet_s() -> None:
    from search_spaces.nb201.supernet import NB201Supernet

    net = tiny(seed=3)
    plain = NB201Supernet(net.space)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if "alphas" not in k
                           and "betas" not in k})
    for arch in ARCHS:
        net.set_active(arch)
        plain.set_active(arch)
        assert torch.equal(net(images()), plain(images()))


def test_softmax_mode_trains_every_alpha_and_every_conv() -> None:
    net = tiny()
    net(images()).square().mean().backward()
    grad = net.alphas("cell").grad
    assert grad is not None and bool((grad != 0).all())
    convs = [p for name, p in net.named_parameters() if ".edges." in name and "1.weight" in name]
    assert convs and all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in convs)


def test_gumbel_mode_runs_the_sampled_ops_and_trains_every_alpha() -> None:
    net = tiny()
    net.mode, net.tau = "gumbel", 1.0
    net(images()).square().mean().backward()
    grad = net.alphas("cell").grad
    # straight-through: every op of an edge into the output learns from one sample (edges into
    # a node that only feeds `none` edges may get nothing)
    assert grad is not None and bool((grad[3:] != 0).all())
    ran: dict[str, int] = {}
    for name, p in net.named_parameters():  # network.cells.K.edges.EDGE.OP.1.weight
        if ".edges." in name and name.endswith("1.weight") and p.grad is not None:
            key = ".".join(name.split(".")[:5])  # per cell and edge
            ran[key] = ran.get(key, 0) + int(bool(p.grad.abs().sum() > 0))
    assert ran and max(ran.values()) <= 1  # one sampled op per edge


def test_rome_mode_keeps_two_inputs_per_node_and_never_samples_none() -> None:
    net = tiny(topology_inputs=2)
    net.mode, net.tau = "rome", 1.0
    for _ in range(20):
        mix = net.cell_weights("cell")
        assert mix.hard is not None
        hard = mix.hard.tolist()
        for rows in NODE_ROWS:
            kept = [row for row in rows if hard[row] >= 0]
            assert len(kept) == min(2, len(rows))
        assert all(h != OPS.index("none") for h in hard)
        dropped = [row for row, h in enumerate(hard) if h < 0]
        assert all(float(mix.ops[row].detach().abs().sum()) == 0.0 for row in dropped)
    net(images()).square().mean().backward()
    assert net.betas("cell").grad is not None and net.alphas("cell").grad is not None


def test_gumbel_one_hot_bookkeeping() -> None:
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]], requires_grad=True)
    weights, index = gumbel_one_hot(logits, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(weights.detach(), torch.nn.functional.one_hot(index, 3).float())
    weights[0, 1].backward()
    assert logits.grad is not None and bool((logits.grad[0] != 0).all())
    again, index2 = gumbel_one_hot(logits, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(index, index2)  # seeded
    counts = torch.zeros(3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(2000):
        counts[gumbel_one_hot(logits[:1].detach(), 1.0, generator)[1][0]] += 1
    expected = torch.softmax(logits[0].detach(), dim=0)
    torch.testing.assert_close(counts / counts.sum(), expected, atol=0.03, rtol=0)


def test_gumbel_top_k_bookkeeping() -> None:
    logits = torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0, -2.0], requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    first_choice = torch.zeros(3)
    for _ in range(1500):
        mask = gumbel_top_k(logits, NODE_ROWS, 2, 1.0, generator)
        assert mask.detach().tolist()[:3] == [1.0, 1.0, 1.0]  # nodes 1 and 2 keep their inputs
        assert float(mask[3:].detach().sum()) == 2.0
        first_choice[int(mask[3:].detach().argmin())] += 1  # the dropped edge of node 3
    # the edge with the largest logit is dropped least, the smallest most
    assert first_choice[0] < first_choice[1] < first_choice[2]
    mask = gumbel_top_k(logits, NODE_ROWS, 2, 1.0, generator)
    (mask * torch.arange(6.0)).sum().backward()
    assert logits.grad is not None and bool((logits.grad[3:] != 0).all())


def test_partial_channels_run_on_a_share_of_the_channels() -> None:
    net = tiny(partial_channels=2, edge_norm=True)
    conv = net.network.cells[0].conv(1, 0, "nor_conv_3x3")  # type: ignore[operator]
    assert conv[1].weight.shape[:2] == (2, 2)
    out = net(images())
    out.square().mean().backward()
    assert out.shape == (4, 10) and net.betas("cell").grad is not None
    with pytest.raises(ConfigError, match="dividing"):
        tiny(partial_channels=3)


def test_derive_reads_none_like_any_op_and_rome_topology_drops_an_input_of_node_3() -> None:
    net = tiny()
    with torch.no_grad():
        net.alphas("cell").zero_()
        for row, key in enumerate(KEYS):
            net.alphas("cell")[row, OPS.index(ARCHS[0][key])] = 1.0
    assert net.derive() == ARCHS[0]
    assert net.arch_string(net.derive()).startswith("|none~0|+|avg_pool_3x3~0|")
    rome = tiny(topology_inputs=2)
    with torch.no_grad():
        rome.alphas("cell")[:, OPS.index("none")] = 10.0  # never kept by rome's op choice
        rome.alphas("cell")[:, OPS.index("nor_conv_1x1")] = 1.0
        rome.betas("cell").copy_(torch.tensor([0.0, 0.0, 0.0, 3.0, -1.0, 2.0]))
    arch = rome.derive()
    assert arch["edge_3_1"] == "none"
    assert [arch[k] for k in KEYS if k != "edge_3_1"] == ["nor_conv_1x1"] * 5


def test_extract_equals_active_and_arch_weights_round_trip() -> None:
    net = tiny(seed=1).eval()
    for arch in ARCHS:
        net.set_active(arch)
        torch.testing.assert_close(net.extract_subnet(arch)(images()), net(images()))
        assert net.arch_from_weights(net.arch_weights(arch)) == arch
