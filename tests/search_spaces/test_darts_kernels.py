"""The search cell's CPU kernels compute what the plain torch ops compute, gradients included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_spaces.darts import mixed
from search_spaces.darts.genotypes import PRIMITIVES
from search_spaces.darts.kernels import (
    SharedChannelsLast,
    depthwise_conv,
    grouped_pointwise,
    pools_3x3,
)
from search_spaces.darts.mixed import StateOps


def _grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    return torch.autograd.grad(out, inputs, upstream)


@pytest.mark.parametrize(("kernel", "stride", "dilation"), [(3, 1, 1), (5, 2, 1), (3, 1, 2)])
def test_depthwise_conv_matches_conv2d(kernel: int, stride: int, dilation: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 9, 9, generator=g, requires_grad=True)
    w = torch.randn(6, 1, kernel, kernel, generator=g, requires_grad=True)
    pad = dilation * (kernel - 1) // 2
    ours = depthwise_conv(x, w, stride, pad, dilation)
    ref = F.conv2d(x, w, None, stride, pad, dilation, groups=6)
    torch.testing.assert_close(ours, ref)
    for a, b in zip(_grads(ours, (x, w)), _grads(ref, (x, w)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert a.is_contiguous()
    # only the input's gradient asked for (architecture step): no weight gradient computed
    (only_x,) = _grads(depthwise_conv(x, w, stride, pad, dilation), (x,))
    ref = F.conv2d(x, w, None, stride, pad, dilation, groups=6)
    torch.testing.assert_close(only_x, _grads(ref, (x,))[0], rtol=1e-4, atol=1e-5)


def test_shared_channels_last_copy_is_made_once_and_dropped_after_the_last_user() -> None:
    x = torch.randn(2, 3, 4, 4)
    shared = SharedChannelsLast(2)
    first, second = shared.get(x), shared.get(x)
    assert first is second and first.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(first, x)
    assert shared._copy is None  # not kept past the backward pass


def test_depthwise_convs_sharing_an_input_get_their_own_weight_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 6, generator=g, requires_grad=True)
    w3 = torch.randn(4, 1, 3, 3, generator=g, requires_grad=True)
    w5 = torch.randn(4, 1, 5, 5, generator=g, requires_grad=True)
    shared = SharedChannelsLast(2)
    ours = depthwise_conv(x, w3, 1, 1, 1, shared) + depthwise_conv(x, w5, 1, 2, 1, shared)
    ref = F.conv2d(x, w3, None, 1, 1, 1, 4) + F.conv2d(x, w5, None, 1, 2, 1, 4)
    for a, b in zip(_grads(ours, (x, w3, w5)), _grads(ref, (x, w3, w5)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_grouped_pointwise_matches_grouped_conv() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 12, 5, 5, generator=g, requires_grad=True)
    w = torch.randn(12, 4, 1, 1, generator=g, requires_grad=True)
    ours, ref = grouped_pointwise(x, w, 3), F.conv2d(x, w, groups=3)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    for a, b in zip(_grads(ours, (x, w)), _grads(ref, (x, w)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_pools_match_nchw_pools(stride: int) -> None:
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    mx, av = pools_3x3(x, stride)
    assert mx.is_contiguous() and av.is_contiguous()
    torch.testing.assert_close(mx, F.max_pool2d(x, 3, stride, 1))
    torch.testing.assert_close(av, F.avg_pool2d(x, 3, stride, 1, count_include_pad=False))
    ours = _grads(mx + 2 * av, (x,))[0]
    ref_out = F.max_pool2d(x, 3, stride, 1) + 2 * F.avg_pool2d(
        x, 3, stride, 1, count_include_pad=False
    )
    torch.testing.assert_close(ours, _grads(ref_out, (x,))[0])


def _plain_kernels(patch: pytest.MonkeyPatch) -> None:
    """Route the search cell through plain torch ops, as the independent reference."""
    def depthwise(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int = 0,
                  dilation: int = 1, shared: object = None) -> torch.Tensor:
        return F.conv2d(x, w, None, stride, padding, dilation, groups=x.shape[1])

    def dilated(x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
        return depthwise(x, w, stride, w.shape[-1] - 1, 2)

    def pools(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (F.max_pool2d(x, 3, stride, 1),
                F.avg_pool2d(x, 3, stride, 1, count_include_pad=False))

    patch.setattr(mixed, "depthwise_conv", depthwise)
    patch.setattr(mixed, "_dilated2_depthwise", dilated)
    patch.setattr(mixed, "grouped_pointwise", lambda x, w, g: F.conv2d(x, w, groups=g))
    patch.setattr(mixed, "pools_3x3", pools)


@pytest.mark.parametrize("stride", [1, 2])
def test_batched_state_gradients_equal_plain_one_edge_at_a_time(
    stride: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the batched path (shared pixel phases, GEMM pointwise, folded scales, channels-last
    # gradients) against every op of one edge on its own with plain torch kernels
    ops = StateOps(3, 4, stride, torch.Generator().manual_seed(0))
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    alphas = torch.randn(3, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    params = (x, alphas, *ops.parameters())

    def loss(batched: bool) -> torch.Tensor:
        weights = F.softmax(alphas, dim=-1)
        if batched:
            out = ops(x, weights)
        else:
            edges = [
                torch.stack([ops.single(x, e, op, weights[e, op], {})
                             for op in range(1, len(PRIMITIVES))]).sum(0)
                for e in range(3)
            ]
            out = torch.stack(edges, dim=1)
        total: torch.Tensor = (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum()
        return total

    ours = torch.autograd.grad(loss(True), params)
    with monkeypatch.context() as patch:
        _plain_kernels(patch)
        ref = torch.autograd.grad(loss(False), params)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
