"""The weight-sharing OFA ResNet50 network for `OFAResNet50Space`, and its static subnets."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.arch import Arch
from nas.errors import ConfigError
from nas.layers.dynamic import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear
from nas.supernet.base import Supernet
from search_spaces.ofa_resnet50.layout import (
    BASE_DEPTHS,
    EXPAND_CHOICES,
    STAGE_STRIDES,
    WIDTH_CHOICES,
    ResLayer,
    mid_width,
    parse_key,
    stage_width,
    stem_widths,
)

if TYPE_CHECKING:
    from search_spaces.ofa_resnet50.space import OFAResNet50Space


# -- static modules ---------------------------------------------------------------------------
class ConvBNReLU(nn.Module):
    """3x3 conv-BN-ReLU, optionally residual (`x + relu(bn(conv(x)))`, OFA's stem block)."""

    conv_then_bn = True  # lets nas.layers.fuse fold the BN for evaluation

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, skip: bool) -> None:
        super().__init__()
        self.conv, self.bn, self.skip = conv, bn, skip

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn(self.conv(x)))
        if self.skip:
            return x + y
        return y


class Bottleneck(nn.Module):
    """1x1-3x3-1x1 bottleneck; the shortcut is identity or avg-pool + 1x1 conv + BN."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Classifier(nn.Module):
    def __init__(self, linear: nn.Linear, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout, self.linear = nn.Dropout(dropout), linear

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.linear(self.dropout(x.mean((2, 3))))
        return logits


def _avgpool(stride: int) -> nn.Module:
    return nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()


def build_layer(layer: ResLayer) -> nn.Module:
    """A static module with random weights for one layer group (for latency profiling)."""
    i, m, o = layer.in_channels, layer.mid, layer.out_channels
    if layer.kind == "conv":
        return ConvBNReLU(
            nn.Conv2d(i, o, 3, layer.stride, 1, bias=False), nn.BatchNorm2d(o), layer.skip
        )
    if layer.kind == "pool":
        return nn.MaxPool2d(3, 2, 1)
    if layer.kind == "classifier":
        return Classifier(nn.Linear(i, layer.classes))
    body = nn.Sequential(
        nn.Conv2d(i, m, 1, bias=False),
        nn.BatchNorm2d(m),
        nn.ReLU(inplace=True),
        nn.Conv2d(m, m, 3, layer.stride, 1, bias=False),
        nn.BatchNorm2d(m),
        nn.ReLU(inplace=True),
        nn.Conv2d(m, o, 1, bias=False),
        nn.BatchNorm2d(o),
    )
    shortcut: nn.Module = (
        nn.Identity()
        if layer.skip
        else nn.Sequential(
            _avgpool(layer.stride), nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o)
        )
    )
    return Bottleneck(body, shortcut)


# -- dynamic modules --------------------------------------------------------------------------
class DynamicConvBN(nn.Module):
    """Elastic conv + BN: output width chosen per call, input width read from the input."""

    def __init__(self, max_in: int, max_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, kernel, stride)
        self.bn = DynamicBatchNorm2d(max_out)

    def forward(self, x: Tensor, out_channels: int) -> Tensor:
        y: Tensor = self.bn(self.conv(x, out_channels))
        return y

    def export(self, in_channels: int, out_channels: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        return self.conv.export(in_channels, out_channels), self.bn.export(out_channels)

    @torch.no_grad()
    def permute_outputs(self, order: Tensor) -> None:
        self.conv.weight.copy_(self.conv.weight[order])
        for tensor in (self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var):
            assert tensor is not None
            tensor.copy_(tensor[order])


class DynamicBottleneck(nn.Module):
    def __init__(self, max_in: int, max_out: int, stride: int, downsample: bool) -> None:
        super().__init__()
        max_mid = mid_width(max_out, max(EXPAND_CHOICES))
        self.conv1 = DynamicConvBN(max_in, max_mid, 1)
        self.conv2 = DynamicConvBN(max_mid, max_mid, 3, stride)
        self.conv3 = DynamicConvBN(max_mid, max_out, 1)
        self.stride = stride
        self.shortcut = DynamicConvBN(max_in, max_out, 1) if downsample else None
        self.out_channels, self.mid = max_out, max_mid

    def set_active(self, out_channels: int, expand_ratio: float) -> None:
        self.out_channels, self.mid = out_channels, mid_width(out_channels, expand_ratio)

    def forward(self, x: Tensor) -> Tensor:
        # in-place ReLUs: each input is a fresh BN output or sum that nothing else reads
        y = F.relu(self.conv1(x, self.mid), inplace=True)
        y = F.relu(self.conv2(y, self.mid), inplace=True)
        y = self.conv3(y, self.out_channels)
        if self.shortcut is None:
            return F.relu(y + x, inplace=True)
        pooled = (
            F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True) if self.stride > 1 else x
        )
        return F.relu(y + self.shortcut(pooled, self.out_channels), inplace=True)

    def export(self, in_channels: int) -> Bottleneck:
        mid, out = self.mid, self.out_channels
        body = nn.Sequential(
            *self.conv1.export(in_channels, mid),
            nn.ReLU(inplace=True),
            *self.conv2.export(mid, mid),
            nn.ReLU(inplace=True),
            *self.conv3.export(mid, out),
        )
        shortcut: nn.Module = nn.Identity()
        if self.shortcut is not None:
            shortcut = nn.Sequential(
                _avgpool(self.stride), *self.shortcut.export(in_channels, out)
            )
        return Bottleneck(body, shortcut)

    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort hidden channels by the L1 norm of the weights that read them (OFA's order)."""
        order = torch.argsort(self.conv3.conv.weight.abs().sum(dim=(0, 2, 3)), descending=True)
        self.conv3.conv.weight.copy_(self.conv3.conv.weight[:, order])
        self.conv2.permute_outputs(order)
        order = torch.argsort(self.conv2.conv.weight.abs().sum(dim=(0, 2, 3)), descending=True)
        self.conv2.conv.weight.copy_(self.conv2.conv.weight[:, order])
        self.conv1.permute_outputs(order)


class OFAResNet50Supernet(Supernet):
    """OFA's `OFAResNets` (depth 0/1/2, expand 0.2/0.25/0.35, width 0.65/0.8/1.0)."""

    def __init__(self, space: OFAResNet50Space, *, seed: int = 0) -> None:
        super().__init__()
        self.space: OFAResNet50Space = space
        top = max(WIDTH_CHOICES)
        stem_mid, stem_out = stem_widths(top, space.width_scale)
        stride = 1 if space.small_input else 2
        self.stem1 = DynamicConvBN(space.in_channels, stem_mid, 3, stride)
        self.stem2 = DynamicConvBN(stem_mid, stem_mid, 3)
        self.stem3 = DynamicConvBN(stem_mid, stem_out, 3)
        blocks, channels = [], stem_out
        for s, base in enumerate(BASE_DEPTHS):
            width = stage_width(s, top, space.width_scale)
            for j in range(base + 2):
                blocks.append(
                    DynamicBottleneck(
                        channels, width, STAGE_STRIDES[s] if j == 0 else 1, downsample=j == 0
                    )
                )
                channels = width
        self.blocks = nn.ModuleList(blocks)
        self.classifier = DynamicLinear(channels, space.num_classes)
        self.dropout = nn.Dropout(space.dropout)
        self._active: dict[str, Any] = {}
        self._running: list[int] = []
        self.channels_last = True  # NHWC activations are faster for oneDNN convs on CPU
        self._stem: tuple[int, int, bool] = (stem_mid, stem_out, True)
        self.init_weights(seed)
        self.set_active(space.largest())

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """He (fan-out) normal convs, uniform linear with zero bias, BN 1/0 (OFA's init)."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, DynamicConv2d):
                w = module.weight
                w.normal_(
                    0.0,
                    math.sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3])),
                    generator=generator,
                )
            elif isinstance(module, DynamicLinear):
                bound = 1.0 / math.sqrt(module.weight.shape[1])
                module.weight.uniform_(-bound, bound, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def set_active(self, arch: Arch) -> None:
        arch = self.space.normalize(arch)
        wm = arch["width_mult"]
        scale = self.space.width_scale
        self._stem = (
            stem_widths(wm[0], scale)[0],
            stem_widths(wm[1], scale)[1],
            arch["stem_residual"],
        )
        running, index = [], 0
        for s, base in enumerate(BASE_DEPTHS):
            width = stage_width(s, wm[2 + s], scale)
            for j in range(base + 2):
                block = self.blocks[index]
                assert isinstance(block, DynamicBottleneck)
                block.set_active(width, arch["expand_ratio"][index])
                if j < base + arch["depth"][s]:
                    running.append(index)
                index += 1
        self._active, self._running = arch, running

    def active(self) -> dict[str, Any]:
        return copy.deepcopy(self._active)

    def forward(self, x: Tensor) -> Tensor:
        stem_mid, stem_out, residual = self._stem
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.stem1(x, stem_mid), inplace=True)
        if residual:
            x = x + F.relu(self.stem2(x, stem_mid), inplace=True)
        x = F.relu(self.stem3(x, stem_out), inplace=True)
        if not self.space.small_input:
            x = F.max_pool2d(x, 3, 2, 1)
        for i in self._running:
            x = self.blocks[i](x)
        logits: Tensor = self.classifier(self.dropout(x.mean((2, 3))))
        return logits

    def extract_subnet(self, arch: Arch) -> nn.Module:
        previous = self._active
        self.set_active(arch)
        try:
            subnet = self._export()
        finally:
            self.set_active(previous)
        return subnet.train(self.training)

    def _export(self) -> nn.Sequential:
        stem_mid, stem_out, residual = self._stem
        layers: list[nn.Module] = [
            ConvBNReLU(*self.stem1.export(self.space.in_channels, stem_mid), skip=False)
        ]
        if residual:
            layers.append(ConvBNReLU(*self.stem2.export(stem_mid, stem_mid), skip=True))
        layers.append(ConvBNReLU(*self.stem3.export(stem_mid, stem_out), skip=False))
        if not self.space.small_input:
            layers.append(nn.MaxPool2d(3, 2, 1))
        channels = stem_out
        for i in self._running:
            block = self.blocks[i]
            assert isinstance(block, DynamicBottleneck)
            layers.append(block.export(channels))
            channels = block.out_channels
        layers.append(Classifier(self.classifier.export(channels), self.space.dropout))
        return nn.Sequential(*layers)

    def reorganize_channels(self) -> None:
        for block in self.blocks:
            assert isinstance(block, DynamicBottleneck)
            block.reorganize_channels()

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        """A standalone static module (random weights) for a `space.block_keys()` key, and its
        batch-1 input shape."""
        try:
            layer = parse_key(key)
        except ValueError as exc:
            raise ConfigError(f"{exc}; keys come from space.block_keys()") from None
        return build_layer(layer), (1, layer.in_channels, layer.resolution, layer.resolution)
