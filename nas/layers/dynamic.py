"""Elastic layers: weights are stored at the largest size and sliced on each forward.

Input channel counts are read from the input tensor; output sizes (and kernel sizes) are chosen
by the caller, so a layer keeps no per-subnet state. Every layer can `export()` a plain static
module holding copies of the active slices. Slices are views of the stored weights, so gradients
flow into the shared storage and BN running statistics update in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def head(tensor: Tensor, *sizes: int) -> Tensor:
    """`tensor[:sizes[0], :sizes[1], ...]`, or `tensor` itself when nothing is cut.

    Skipping the no-op slice keeps the largest subnet free of slice-backward nodes (each
    allocates a full-size zero gradient and copies into it).
    """
    if all(size == dim for size, dim in zip(sizes, tensor.shape, strict=False)):
        return tensor
    return tensor[tuple(slice(0, size) for size in sizes)]


class DynamicConv2d(nn.Module):
    """A dense conv (`groups=1`) whose first `out_channels` filters over the first input
    channels are used. Used for 1x1 expand/project convs and the ResNet 3x3 convs."""

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: Tensor, out_channels: int) -> Tensor:
        weight = head(self.weight, out_channels, x.shape[1])
        return F.conv2d(x, weight, None, self.stride, self.kernel_size // 2)

    def export(self, in_channels: int, out_channels: int) -> nn.Conv2d:
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            self.kernel_size,
            self.stride,
            self.kernel_size // 2,
            bias=False,
        )
        conv.weight.data.copy_(self.weight.data[:out_channels, :in_channels])
        return conv


class DynamicDepthwiseConv2d(nn.Module):
    """Depthwise conv with an elastic kernel size (OFA's kernel transformation).

    The stored kernel is the largest one. A smaller kernel is the centre crop of the next larger
    *effective* kernel multiplied by a learned `k^2 x k^2` matrix (initialised to identity):
    7x7 -> crop 5x5 -> x M(7to5) -> crop 3x3 -> x M(5to3). Because each step is linear, the
    chain for any target is folded into one `(K^2, k^2)` matrix applied with one matmul to the
    cropped weights of the active channels only.
    """

    def __init__(self, max_channels: int, kernel_sizes: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(set(kernel_sizes)))
        self.max_kernel, self.stride = self.kernel_sizes[-1], stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, self.max_kernel, self.max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        pairs = list(zip(self.kernel_sizes[1:], self.kernel_sizes[:-1], strict=True))
        self.transforms = nn.ParameterDict(
            {f"{big}to{small}": nn.Parameter(torch.eye(small * small)) for big, small in pairs}
        )
        for big, small in pairs:
            self.register_buffer(
                f"centre_{big}to{small}", _centre_index(big, small), persistent=False
            )

    def _folded_transform(self, kernel: int) -> Tensor:
        """Matrix T with `crop(stored, next smaller size).flatten() @ T == effective kernel`."""
        sizes = self.kernel_sizes
        i = len(sizes) - 1
        matrix: Tensor = self.transforms[f"{sizes[i]}to{sizes[i - 1]}"].t()  # OFA: F.linear(w, M)
        i -= 1
        while sizes[i] > kernel:
            big, small = sizes[i], sizes[i - 1]
            centre: Tensor = getattr(self, f"centre_{big}to{small}")
            matrix = matrix[:, centre] @ self.transforms[f"{big}to{small}"].t()
            i -= 1
        return matrix

    def active_weight(self, channels: int, kernel: int) -> Tensor:
        """The effective `(channels, 1, kernel, kernel)` weight."""
        weight = head(self.weight, channels)
        if kernel == self.max_kernel:
            return weight
        crop = _crop(weight, self.max_kernel, self.kernel_sizes[-2])
        flat = crop.reshape(channels, -1) @ self._folded_transform(kernel)
        return flat.view(channels, 1, kernel, kernel)

    def forward(self, x: Tensor, kernel: int) -> Tensor:
        channels = x.shape[1]
        weight = self.active_weight(channels, kernel)
        # With 'same' padding, taps farther than side-1 from the centre only ever see padding:
        # cropping them away gives the same output and gradients, and on small feature maps
        # (1x1, 2x2 late in the network at low resolution) it is 10-30x faster on CPU.
        reach_h, reach_w = min(kernel, 2 * x.shape[-2] - 1), min(kernel, 2 * x.shape[-1] - 1)
        if reach_h < kernel or reach_w < kernel:
            top, left = (kernel - reach_h) // 2, (kernel - reach_w) // 2
            weight = weight[..., top : top + reach_h, left : left + reach_w]
        return F.conv2d(x, weight, None, self.stride, (reach_h // 2, reach_w // 2), 1, channels)

    def export(self, channels: int, kernel: int) -> nn.Conv2d:
        conv = nn.Conv2d(
            channels, channels, kernel, self.stride, kernel // 2, groups=channels, bias=False
        )
        with torch.no_grad():
            conv.weight.copy_(self.active_weight(channels, kernel))
        return conv


def _crop(weight: Tensor, big: int, small: int) -> Tensor:
    start = (big - small) // 2
    return weight[..., start : start + small, start : start + small]


def _centre_index(big: int, small: int) -> Tensor:
    """Flat indexes of the centre `small x small` window inside a flattened `big x big` kernel."""
    start = (big - small) // 2
    rows = torch.arange(start, start + small)
    return (rows[:, None] * big + rows[None, :]).reshape(-1)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first `x.shape[1]` channels; statistics are sliced, updated in place.

    Behaves exactly like `nn.BatchNorm2d` when all channels are active (including
    `momentum=None`, the cumulative average used by BN recalibration).
    """

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        if channels == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch_stats = self.training or self.running_mean is None
        running_mean = None if self.running_mean is None else self.running_mean[:channels]
        running_var = None if self.running_var is None else self.running_var[:channels]
        return F.batch_norm(
            x,
            running_mean if not self.training or self.track_running_stats else None,
            running_var if not self.training or self.track_running_stats else None,
            self.weight[:channels],
            self.bias[:channels],
            use_batch_stats,
            factor,
            self.eps,
        )

    def export(self, channels: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)
        bn.weight.data.copy_(self.weight.data[:channels])
        bn.bias.data.copy_(self.bias.data[:channels])
        assert self.running_mean is not None and self.running_var is not None
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(self.running_mean[:channels])
        bn.running_var.copy_(self.running_var[:channels])
        if bn.num_batches_tracked is not None and self.num_batches_tracked is not None:
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn


class DynamicLinear(nn.Module):
    """A linear layer over the first `x.shape[-1]` input features (fixed outputs)."""

    def __init__(self, max_in: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, max_in))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, head(self.weight, self.weight.shape[0], x.shape[-1]), self.bias)

    def export(self, in_features: int) -> nn.Linear:
        linear = nn.Linear(in_features, self.weight.shape[0], bias=self.bias is not None)
        linear.weight.data.copy_(self.weight.data[:, :in_features])
        if self.bias is not None and linear.bias is not None:
            linear.bias.data.copy_(self.bias.data)
        return linear


class SqueezeExcite(nn.Module):
    """Static squeeze-excite: `x * hardsigmoid(W2 relu(W1 mean(x)))` (MobileNetV3's SE).

    The two 1x1 convs act on a pooled vector, so they are `nn.Linear` layers (same parameters
    and MACs as OFA's 1x1 convs, cheaper to run).
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Linear(channels, hidden)
        self.expand = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        scale = F.hardsigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3))))))
        return x * scale[:, :, None, None]


class DynamicSqueezeExcite(nn.Module):
    """Squeeze-excite over the first `x.shape[1]` channels; hidden width `hidden_of(channels)`."""

    def __init__(self, max_channels: int, hidden_of: Callable[[int], int]) -> None:
        super().__init__()
        self.hidden_of = hidden_of
        hidden = hidden_of(max_channels)
        self.reduce = nn.Linear(max_channels, hidden)
        self.expand = nn.Linear(hidden, max_channels)

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        hidden = self.hidden_of(channels)
        pooled = x.mean((2, 3))
        mid = F.relu(
            F.linear(
                pooled, head(self.reduce.weight, hidden, channels), head(self.reduce.bias, hidden)
            )
        )
        scale = F.hardsigmoid(
            F.linear(
                mid, head(self.expand.weight, channels, hidden), head(self.expand.bias, channels)
            )
        )
        return x * scale[:, :, None, None]

    def export(self, channels: int) -> SqueezeExcite:
        hidden = self.hidden_of(channels)
        se = SqueezeExcite(channels, hidden)
        se.reduce.weight.data.copy_(self.reduce.weight.data[:hidden, :channels])
        se.reduce.bias.data.copy_(self.reduce.bias.data[:hidden])
        se.expand.weight.data.copy_(self.expand.weight.data[:channels, :hidden])
        se.expand.bias.data.copy_(self.expand.bias.data[:channels])
        return se


def activation(name: str) -> nn.Module:
    """`relu` or `hswish` (OFA's h_swish equals `nn.Hardswish`)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation '{name}' (expected relu or hswish)")


def apply_activation(x: Tensor, name: str) -> Tensor:
    """In place: the input is always a fresh BN output that nothing else reads, and skipping the
    allocation of a large activation tensor is measurably faster on CPU."""
    return F.relu(x, inplace=True) if name == "relu" else F.hardswish(x, inplace=True)
