"""The DARTS search network: batched mixed ops, derivation, PC-DARTS and GDAS modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_spaces.darts.genotypes import PRIMITIVES
from search_spaces.darts.mixed import StateOps
from search_spaces.darts.space import DartsSpace
from search_spaces.darts.supernet import DartsSupernet, channel_shuffle, edge_index


def tiny_net(**kwargs: object) -> DartsSupernet:
    space = DartsSpace(init_channels=8, layers=3, image_size=8)
    return space.build_supernet(**kwargs)


@pytest.mark.parametrize("stride", [1, 2])
def test_batched_edges_equal_one_edge_at_a_time(stride: int) -> None:
    ops = StateOps(3, 4, stride, torch.Generator().manual_seed(0))
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    weights = F.softmax(torch.randn(3, 8, generator=torch.Generator().manual_seed(2)), dim=-1)
    batched = ops(x, weights)
    for edge in range(3):
        reference = sum(
            ops.single(x, edge, op, weights[edge, op], {}) for op in range(1, len(PRIMITIVES))
        )
        torch.testing.assert_close(batched[:, edge], reference, rtol=1e-4, atol=1e-5)


def test_none_weight_only_acts_through_the_softmax() -> None:
    # skipping `none` is exact: its alpha still gets a gradient via the normalisation
    net = tiny_net()
    loss = F.cross_entropy(net(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1]))
    grad = torch.autograd.grad(loss, net.alphas_normal)[0]
    assert grad[:, 0].abs().sum() > 0


def test_derive_takes_top_two_edges_and_best_non_none_op() -> None:
    net = tiny_net()
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[:, 0] = 10.0  # `none` dominates everywhere but is never chosen
        net.alphas_normal[edge_index(0, 1), PRIMITIVES.index("sep_conv_5x5")] = 5.0
        net.alphas_normal[edge_index(0, 0), PRIMITIVES.index("skip_connect")] = 3.0
        net.alphas_normal[edge_index(3, 4), PRIMITIVES.index("dil_conv_3x3")] = 4.0
        net.alphas_normal[edge_index(3, 2), PRIMITIVES.index("max_pool_3x3")] = 2.0
    genotype = net.derive()
    net.space.validate(genotype)
    assert genotype["normal"][:2] == [["sep_conv_5x5", 1], ["skip_connect", 0]]
    assert genotype["normal"][6:] == [["dil_conv_3x3", 4], ["max_pool_3x3", 2]]


def test_pc_darts_edge_weights_change_the_derived_edges() -> None:
    net = tiny_net(partial_channels=2, edge_norm=True)
    assert len(net.arch_parameters()) == 4
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[edge_index(1, 0), PRIMITIVES.index("sep_conv_3x3")] = 1.0
        net.betas_normal[edge_index(1, 2)] = 5.0
        net.betas_normal[edge_index(1, 1)] = 4.0
    nodes = net.derive()["normal"][2:4]
    assert sorted(source for _, source in nodes) == [1, 2]
    out = net(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 10)


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_gumbel_mode_runs_one_op_per_edge_and_trains_every_alpha() -> None:
    net = tiny_net()
    net.mode, net.tau = "gumbel", 1.0
    loss = F.cross_entropy(net(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1]))
    grad = torch.autograd.grad(loss, net.alphas_normal)[0]
    assert (grad.abs().sum(dim=1) > 0).all()


def test_gumbel_sampling_is_seeded() -> None:
    outs = []
    for _ in range(2):
        net = tiny_net(seed=3)
        net.mode = "gumbel"
        net.eval()
        with torch.no_grad():
            outs.append(net(torch.ones(1, 3, 8, 8)))
    torch.testing.assert_close(outs[0], outs[1])


def test_weight_and_arch_parameters_partition_the_parameters() -> None:
    net = tiny_net(partial_channels=2, edge_norm=True)
    ids = {id(p) for p in net.weight_parameters()} | {id(p) for p in net.arch_parameters()}
    assert ids == {id(p) for p in net.parameters()}
    assert not {id(p) for p in net.weight_parameters()} & {id(p) for p in net.arch_parameters()}
