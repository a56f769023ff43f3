"""Mixed operations of the DARTS search cell, batched over the edges that share an input.

In a DARTS cell every state feeds several nodes: the two cell inputs feed all 4 nodes, node 0
feeds 3, and so on. The reference code runs one `MixedOp` module per edge (14 per cell, each
with its own ReLU, pools and batch norms). Here the edges that leave one state are computed
together:

* the ReLU, both pools and their (affine-free) batch norms are shared: on the same input they
  give the same output for every edge;
* each convolution op of all those edges is one grouped convolution (`groups = edges * C`
  depthwise, `groups = edges` pointwise), so the number of kernel launches does not grow with
  the number of edges;
* the architecture weight of a convolution op is folded into its last batch norm's `weight`
  (an affine-free batch norm times a scalar is a batch norm with that scale), and the
  parameter-free ops are mixed with one batched matmul;
* `none` contributes exactly zero, so it is never computed (its alpha still gets its gradient
  through the softmax).

`single()` runs one operation of one edge on the same weights: the single-path mode (GDAS).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.darts.genotypes import PRIMITIVES
from search_spaces.darts.kernels import (
    SharedChannelsLast,
    depthwise_conv,
    grouped_pointwise,
    pools_3x3,
)

CONV_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
# (kernel, dilation, stages): separable convs apply dw+pw twice, dilated once
CONV_SHAPES = {
    "sep_conv_3x3": (3, 1, 2),
    "sep_conv_5x5": (5, 1, 2),
    "dil_conv_3x3": (3, 2, 1),
    "dil_conv_5x5": (5, 2, 1),
}
OP_INDEX = {name: index for index, name in enumerate(PRIMITIVES)}
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


class BNStats(nn.Module):
    """Running statistics of an affine-free batch norm whose scale is given per call."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def __call__(
        self, x: torch.Tensor, weight: torch.Tensor | None = None, part: slice | None = None
    ) -> torch.Tensor:
        return cast(torch.Tensor, super().__call__(x, weight, part))

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor | None = None, part: slice | None = None
    ) -> torch.Tensor:
        mean: torch.Tensor = self.running_mean  # type: ignore[assignment]
        var: torch.Tensor = self.running_var  # type: ignore[assignment]
        if part is not None:  # one edge's channels: views, updated in place
            mean, var = mean[part], var[part]
        return F.batch_norm(
            x, mean, var, weight=weight, bias=None, training=self.training,
            momentum=BN_MOMENTUM, eps=BN_EPS,
        )


def _kaiming(shape: tuple[int, ...], generator: torch.Generator) -> nn.Parameter:
    # the default init of nn.Conv2d (kaiming uniform with a=sqrt(5)): bound = 1/sqrt(fan_in)
    fan_in = shape[1] * shape[2] * shape[3]
    bound = 1.0 / fan_in**0.5
    return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)


class ConvStage(nn.Module):
    """ReLU'd input -> depthwise k x k -> pointwise 1 x 1 -> BN, for `edges` edges at once."""

    def __init__(self, edges: int, channels: int, kernel: int, dilation: int, stride: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.edges, self.channels = edges, channels
        self.stride, self.dilation = stride, dilation
        self.padding = dilation * (kernel - 1) // 2
        self.depthwise = _kaiming((edges * channels, 1, kernel, kernel), generator)
        self.pointwise = _kaiming((edges * channels, channels, 1, 1), generator)
        self.bn = BNStats(edges * channels)

    def _depthwise(self, x: torch.Tensor, weight: torch.Tensor,
                   shared: SharedChannelsLast | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.dilation == 2 and h % 2 == 0 and w % 2 == 0:
            return _dilated2_depthwise(x, weight, self.stride)
        return depthwise_conv(x, weight, self.stride, self.padding, self.dilation, shared)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None, phased: bool = False,
                shared: SharedChannelsLast | None = None) -> torch.Tensor:
        """`x` has `edges * channels` channels (edge-major); `scale` is per channel or None.

        `phased`: `x` is already split into pixel phases (`to_phases`) for a dilation-2 stage,
        which then runs as a plain depthwise convolution and returns phases too. `shared`:
        `x`'s channels-last copy shared with the other ops reading `x` (weight gradients).
        """
        if phased:
            pad = (self.depthwise.shape[-1] - 1) // 2
            y = depthwise_conv(x, self.depthwise, padding=pad, shared=shared)
        else:
            y = self._depthwise(x, self.depthwise, shared)
        y = grouped_pointwise(y, self.pointwise, self.edges)
        return self.bn(y, scale)

    def single(self, x: torch.Tensor, edge: int, scale: torch.Tensor | None) -> torch.Tensor:
        part = slice(edge * self.channels, (edge + 1) * self.channels)
        y = self._depthwise(x, self.depthwise[part])
        y = grouped_pointwise(y, self.pointwise[part], 1)
        return self.bn(y, scale, part)


def _dilated2_depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    """A dilation-2 depthwise convolution as a plain one on the 4 pixel phases of `x`.

    Output pixel (2p + s, 2q + t) only reads input pixels of phase (s, t), so the dilated
    kernel becomes an ordinary kernel on each quarter-size phase image. CPU kernels for
    ordinary depthwise convolutions are much faster than the dilated ones (in backward
    especially). With stride 2 only phase (0, 0) is read.
    """
    pad = (weight.shape[-1] - 1) // 2
    if stride == 2:
        return depthwise_conv(x[:, :, ::2, ::2], weight, padding=pad)
    return from_phases(depthwise_conv(to_phases(x), weight, padding=pad), x.shape[0])


def to_phases(x: torch.Tensor) -> torch.Tensor:
    """`(n, c, h, w)` -> `(4n, c, h/2, w/2)`: the 4 pixel phases of each image as images."""
    n, c, h, w = x.shape
    phases = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)
    return phases.reshape(n * 4, c, h // 2, w // 2)


def from_phases(y: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of `to_phases` for a batch of `n` images."""
    _, c, h, w = y.shape
    return y.view(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * 2, w * 2)


class ConvOp(nn.Module):
    """A separable (two stages) or dilated (one stage) convolution op for several edges."""

    def __init__(self, name: str, edges: int, channels: int, stride: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        kernel, dilation, stages = CONV_SHAPES[name]
        self.stages = nn.ModuleList(
            ConvStage(edges, channels, kernel, dilation, stride if i == 0 else 1, generator)
            for i in range(stages)
        )

    def forward(self, x: torch.Tensor, scale: torch.Tensor, phased: bool = False,
                shared: SharedChannelsLast | None = None) -> torch.Tensor:
        """`phased`, `shared`: for the first stage, see `ConvStage.forward`."""
        for index, stage in enumerate(self.stages):
            if index > 0:
                x = F.relu(x)
            last = index == len(self.stages) - 1
            x = stage(x, scale if last else None, phased, shared if index == 0 else None)
        return x

    def single(self, x: torch.Tensor, edge: int, scale: torch.Tensor | None) -> torch.Tensor:
        for index, stage in enumerate(self.stages):
            if index > 0:
                x = F.relu(x)
            last = index == len(self.stages) - 1
            x = cast(ConvStage, stage).single(x, edge, scale if last else None)
        return x


class FactorizedReduceOp(nn.Module):
    """The stride-2 skip connection (factorized reduce) of several edges, batched."""

    def __init__(self, edges: int, channels: int, generator: torch.Generator) -> None:
        super().__init__()
        self.edges, self.channels = edges, channels
        half = channels // 2
        self.conv_1 = _kaiming((edges * half, channels, 1, 1), generator)
        self.conv_2 = _kaiming((edges * half, channels, 1, 1), generator)
        self.bn = BNStats(edges * channels)

    def _halves(self, relu_x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        a = F.conv2d(relu_x, w1, stride=2)
        b = F.conv2d(relu_x[:, :, 1:, 1:], w2, stride=2)
        n, _, h, w = a.shape
        edges = w1.shape[0] * 2 // self.channels
        # per edge: [conv_1 half, conv_2 half], as in the single-edge module
        return torch.stack(
            [a.view(n, edges, -1, h, w), b.view(n, edges, -1, h, w)], dim=2
        ).view(n, edges * self.channels, h, w)

    def forward(self, relu_x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.bn(self._halves(relu_x, self.conv_1, self.conv_2), scale)

    def single(self, relu_x: torch.Tensor, edge: int, scale: torch.Tensor | None) -> torch.Tensor:
        half = self.channels // 2
        rows = slice(edge * half, (edge + 1) * half)
        y = self._halves(relu_x, self.conv_1[rows], self.conv_2[rows])
        return self.bn(y, scale, slice(edge * self.channels, (edge + 1) * self.channels))


class StateOps(nn.Module):
    """All mixed operations on the edges leaving one state of a search cell.

    Args:
        edges: number of edges leaving the state.
        channels: channels each op works on (C, or C/K with partial channels).
        stride: 2 for the inputs of a reduction cell, else 1.
        generator: initialisation randomness.
    """

    def __init__(self, edges: int, channels: int, stride: int, generator: torch.Generator) -> None:
        super().__init__()
        self.edges, self.channels, self.stride = edges, channels, stride
        self.convs = nn.ModuleDict(
            {name: ConvOp(name, edges, channels, stride, generator) for name in CONV_OPS}
        )
        self.pool_bn = nn.ModuleDict({"max": BNStats(channels), "avg": BNStats(channels)})
        self.reduce_skip = FactorizedReduceOp(edges, channels, generator) if stride == 2 else None

    def _pools(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mx, av = pools_3x3(x, self.stride)
        return self.pool_bn["max"](mx), self.pool_bn["avg"](av)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Mixed outputs of every edge, `(batch, edges, channels, H', W')`.

        Args:
            x: the state, `(batch, channels, H, W)`.
            weights: `(edges, 8)` op weights in `PRIMITIVES` order (column 0, `none`, unused).
        """
        n, c = x.shape[0], self.channels
        relu_x = F.relu(x)
        wide = relu_x.repeat(1, self.edges, 1, 1) if self.edges > 1 else relu_x
        mx, av = self._pools(x)
        shared = [mx, av] + ([x] if self.stride == 1 else [])
        shared_cols = [OP_INDEX["max_pool_3x3"], OP_INDEX["avg_pool_3x3"]]
        if self.stride == 1:
            shared_cols.append(OP_INDEX["skip_connect"])
        h, w = mx.shape[-2:]
        stacked = torch.stack(shared, dim=1).reshape(n, len(shared), -1)
        out = torch.matmul(weights[:, shared_cols], stacked).view(n, self.edges * c, h, w)
        # both dilated ops read the same pixel phases of the input, and their pointwise convs
        # and batch norms are per pixel: split once, sum in phase layout, merge back once
        phases = to_phases(wide) if self.stride == 1 and h % 2 == 0 and w % 2 == 0 else None
        dilated: torch.Tensor | None = None
        # the sep convs (and the phased dilated convs) read one tensor: one channels-last copy
        wide_cl, phases_cl = SharedChannelsLast(2), SharedChannelsLast(2)
        for name, op in self.convs.items():
            scale = weights[:, OP_INDEX[name]].repeat_interleave(c)
            if phases is not None and name.startswith("dil_"):
                y = cast(ConvOp, op)(phases, scale, phased=True, shared=phases_cl)
                dilated = y if dilated is None else dilated + y
            else:
                sep = wide_cl if name.startswith("sep_") else None
                out = out + cast(ConvOp, op)(wide, scale, shared=sep)
        if dilated is not None:
            out = out + from_phases(dilated, n)
        if self.reduce_skip is not None:
            scale = weights[:, OP_INDEX["skip_connect"]].repeat_interleave(c)
            out = out + self.reduce_skip(relu_x, scale)
        return out.view(n, self.edges, c, h, w)

    def single(self, x: torch.Tensor, edge: int, op: int, weight: torch.Tensor,
               cache: dict[str, torch.Tensor], *, pool_bn: bool = True) -> torch.Tensor:
        """`weight * op(x)` for one edge and one op (GDAS); `cache` shares pools per state.

        `pool_bn=False` leaves out the pools' batch norm, as in the evaluation network (used
        when a discrete genotype runs in the supernet).
        """
        name = PRIMITIVES[op]
        scale = weight.expand(self.channels)
        if name in CONV_OPS:
            return cast(ConvOp, self.convs[name]).single(F.relu(x), edge, scale)
        if name == "skip_connect":
            if self.reduce_skip is None:
                return x * weight
            return self.reduce_skip.single(F.relu(x), edge, scale)
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            if "max" not in cache:
                if pool_bn:
                    cache["max"], cache["avg"] = self._pools(x)
                else:
                    cache["max"], cache["avg"] = pools_3x3(x, self.stride)
            return cache[name[:3]] * weight
        size = [x.shape[0], self.channels, x.shape[2] // self.stride, x.shape[3] // self.stride]
        return x.new_zeros(size)  # none
