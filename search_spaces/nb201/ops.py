"""NAS-Bench-201's layers as plain torch modules: the cell operations and the ResNet block.

Shapes follow the benchmark's evaluation network (Dong & Yang, ICLR 2020), so parameter counts
match its published figures: convolutions have no bias and are followed by an affine batch
norm; the 3x3 average pool excludes padding; `none` has no module (it contributes nothing).
"""

from __future__ import annotations

from torch import Tensor, nn

from search_spaces.darts.ops import ReLUConvBN
from search_spaces.nb201.cells import CONV_KERNELS

__all__ = ["ReLUConvBN", "ResNetBasicBlock", "avg_pool_3x3", "build_op", "conv_op"]


def avg_pool_3x3() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


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
