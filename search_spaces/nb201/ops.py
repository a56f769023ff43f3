"""NAS-Bench-201's layers as plain torch modules: the cell operations and the ResNet block.

Shapes follow the benchmark's evaluation network (Dong & Yang, ICLR 2020), so parameter counts
match its published figures: convolutions have no bias and are followed by an affine batch
norm; the 3x3 average pool excludes padding; `none` has no module (it contributes nothing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.darts.ops import ReLUConvBN
from search_spaces.nb201.cells import CONV_KERNELS

__all__ = ["ReLUConvBN", "ResNetBasicBlock", "avg_pool_3x3", "build_op", "conv_op",
           "mean_pool_3x3"]


def avg_pool_3x3() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


_NEIGHBOURS: dict[tuple[int, int, torch.dtype, torch.device], Tensor] = {}


def mean_pool_3x3(x: Tensor) -> Tensor:
    """`avg_pool_3x3()(x)` for the supernets' training steps: the same values (up to rounding).

    On the CPU, torch's average pool is slow, its backward most of all (measured with one
    thread, 128 x 16 x 32 x 32 channels-last: 66 ms forward and backward against 9 ms for this),
    and at one cell per stage pools took about half of an NB201 training step. So there the sum
    over each 3x3 window is a depthwise convolution with a kernel of ones, divided by the number
    of pixels inside the image. Elsewhere (CUDA) torch's own pool is used.
    """
    if x.device.type != "cpu":
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    channels, height, width = x.shape[1], x.shape[-2], x.shape[-1]
    key = (height, width, x.dtype, x.device)
    if key not in _NEIGHBOURS:  # how many of the 9 window pixels lie inside the image
        ones = torch.ones(1, 1, height, width, dtype=x.dtype, device=x.device)
        _NEIGHBOURS[key] = F.avg_pool2d(ones, 3, 1, 1, divisor_override=1)
    kernel = torch.ones(channels, 1, 3, 3, dtype=x.dtype, device=x.device)
    summed = F.conv2d(x, kernel.to(memory_format=torch.channels_last)
                      if x.is_contiguous(memory_format=torch.channels_last) else kernel,
                      padding=1, groups=channels)
    return summed / _NEIGHBOURS[key].to(summed.dtype)


def conv_op(name: str, channels: int) -> ReLUConvBN:
    """`nor_conv_1x1` or `nor_conv_3x3`: ReLU, k x k conv (same size), batch norm."""
    kernel = CONV_KERNELS[name]
    return ReLUConvBN(channels, channels, kernel, 1, kernel // 2)


def build_op(name: str, channels: int) -> nn.Module | None:
    """The operation `name` of a cell edge at `channels` channels; None for `none`."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return avg_pool_3x3()
    return conv_op(name, channels)


class ResNetBasicBlock(nn.Module):
    """The stride-2 block between stages: two ReLU-conv-BN 3x3 plus a pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.downsample(x) + self.conv_b(self.conv_a(x))
        return out
