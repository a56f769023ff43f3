"""The CPU-fast 3x3 mean pool equals torch's average pool (padding excluded), with gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.fast_pool import MeanPool3x3, mean_pool_3x3, with_fast_pools
from search_spaces.nb201 import NB201Space
from search_spaces.nb201.ops import avg_pool_3x3


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 5, 7, 3), (1, 2, 1, 1)])
def test_training_pool_matches_the_exported_pool_with_its_gradient(
    shape: tuple[int, int, int, int], channels_last: bool
) -> None:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    fast, reference = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    upstream = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    out, expected = mean_pool_3x3(fast), avg_pool_3x3()(reference)
    torch.testing.assert_close(out, expected)
    (out * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(fast.grad, reference.grad)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # AMP: still a mean, in a float type
        torch.testing.assert_close(mean_pool_3x3(x).float(), expected.detach(),
                                   atol=0.05, rtol=0.05)


def test_a_subnet_with_fast_pools_computes_the_same_outputs() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    arch = {key: "avg_pool_3x3" for key in space.sample(np.random.default_rng(0))}
    torch.manual_seed(0)
    model = space.build_network(arch).eval()
    pools = sum(isinstance(m, nn.AvgPool2d) for m in model.modules())
    images = torch.randn(2, 3, 32, 32)
    expected = model(images)
    fast = with_fast_pools(model)
    # every 3x3 cell pool replaced; the ResNet blocks' 2x2 stride-2 pools are not that pool
    assert sum(isinstance(m, MeanPool3x3) for m in fast.modules()) == 6 * 3
    assert sum(isinstance(m, nn.AvgPool2d) for m in fast.modules()) == pools - 6 * 3
    torch.testing.assert_close(fast(images), expected)
