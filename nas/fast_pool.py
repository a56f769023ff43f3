"""A 3x3 mean pool (stride 1, padding excluded) that is fast on the CPU.

For computations whose graph is never exported: NB201 supernet training steps and the working
copies zero-cost proxies score. Exported and profiled subnets keep `nn.AvgPool2d`, which a
deployment runtime implements natively.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mean_pool_3x3(x: Tensor) -> Tensor:
    """`nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x)`: the same values (up to rounding).

    On the CPU, torch's average pool is slow, its backward most of all (measured with one
    thread, 128 x 16 x 32 x 32 channels-last: 66 ms forward and backward against 9 ms for this),
    and at one cell per stage pools took about half of an NB201 training step. So there the sum
    over each 3x3 window is a depthwise convolution with a kernel of ones, divided by the number
    of pixels inside the image. Elsewhere (CUDA) torch's own pool is used.
    """
    if x.device.type != "cpu":
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    kernel, inside = _window(x.shape[1], x.shape[-2], x.shape[-1], x.dtype, x.device,
                             x.is_contiguous(memory_format=torch.channels_last))
    summed = F.conv2d(x, kernel, padding=1, groups=x.shape[1])
    return summed / inside.to(summed.dtype)


@functools.lru_cache(maxsize=64)
def _window(
    channels: int, height: int, width: int, dtype: torch.dtype, device: torch.device,
    channels_last: bool,
) -> tuple[Tensor, Tensor]:
    """The ones kernel (in the input's layout) and how many of each pixel's 9 window pixels lie
    inside the image: made once per shape, not at every training step."""
    # plain tensors even when first asked for under inference mode: training reuses them
    with torch.inference_mode(False), torch.no_grad():
        kernel = torch.ones(channels, 1, 3, 3, dtype=dtype, device=device)
        if channels_last:
            kernel = kernel.to(memory_format=torch.channels_last)
        ones = torch.ones(1, 1, height, width, dtype=dtype, device=device)
        return kernel, F.avg_pool2d(ones, 3, 1, 1, divisor_override=1)


class MeanPool3x3(nn.Module):
    """`mean_pool_3x3` as a module, to stand in for an `nn.AvgPool2d` it equals."""

    def forward(self, x: Tensor) -> Tensor:
        return mean_pool_3x3(x)


def is_mean_pool_3x3(module: nn.Module) -> bool:
    """Whether `module` is an `nn.AvgPool2d` that `MeanPool3x3` computes exactly."""
    return (isinstance(module, nn.AvgPool2d) and module.kernel_size in (3, (3, 3))
            and module.stride in (1, (1, 1)) and module.padding in (1, (1, 1))
            and not module.count_include_pad and not module.ceil_mode
            and module.divisor_override is None)


def with_fast_pools(model: nn.Module) -> nn.Module:
    """`model` with each such `nn.AvgPool2d` replaced in place by a `MeanPool3x3`."""
    for name, child in list(model.named_children()):
        if is_mean_pool_3x3(child):
            setattr(model, name, MeanPool3x3())
        else:
            with_fast_pools(child)
    return model


__all__ = ["MeanPool3x3", "is_mean_pool_3x3", "mean_pool_3x3", "with_fast_pools"]
