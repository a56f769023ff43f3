"""The weight-sharing OFA MobileNetV3 network for `OFAMobileNetV3Space`.

Weights live at the largest size. `set_active(arch)` selects, per block, a kernel size (via the
learned kernel transformation, see `DynamicDepthwiseConv2d`) and a hidden width (the first
`make_divisible(in * expand)` channels), and per stage the first `depth` blocks. The stem conv,
the fixed first block and the head are not elastic and are shared as plain modules.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nas.arch import Arch
from nas.layers.dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSqueezeExcite,
    apply_activation,
)
from nas.supernet.base import Supernet
from search_spaces.ofa_mbv3.layout import EXPAND_CHOICES, KERNEL_CHOICES, BlockSlot, se_width
from search_spaces.ofa_mbv3.static import Head, MBBlock, MobileNetV3Subnet, build_layer

if TYPE_CHECKING:
    from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space


class DynamicMBBlock(nn.Module):
    """An elastic inverted-bottleneck block (kernel size and expand ratio)."""

    def __init__(self, slot: BlockSlot) -> None:
        super().__init__()
        self.slot = slot
        max_mid = slot.mid(max(EXPAND_CHOICES))
        self.expand_conv = DynamicConv2d(slot.in_channels, max_mid)
        self.expand_bn = DynamicBatchNorm2d(max_mid)
        self.depthwise = DynamicDepthwiseConv2d(max_mid, KERNEL_CHOICES, slot.stride)
        self.depthwise_bn = DynamicBatchNorm2d(max_mid)
        self.se = DynamicSqueezeExcite(max_mid, se_width) if slot.use_se else None
        self.project = DynamicConv2d(max_mid, slot.out_channels)
        self.project_bn = nn.BatchNorm2d(slot.out_channels)
        self.kernel, self.mid = max(KERNEL_CHOICES), max_mid

    def set_active(self, kernel: int, expand_ratio: float) -> None:
        self.kernel, self.mid = kernel, self.slot.mid(expand_ratio)

    def forward(self, x: Tensor) -> Tensor:
        act = self.slot.act
        y: Tensor = apply_activation(self.expand_bn(self.expand_conv(x, self.mid)), act)
        y = apply_activation(self.depthwise_bn(self.depthwise(y, self.kernel)), act)
        if self.se is not None:
            y = self.se(y)
        y = self.project_bn(self.project(y, self.slot.out_channels))
        return x + y if self.slot.skip else y

    def export(self) -> MBBlock:
        """A static copy of the active block."""
        mid, act = self.mid, self.slot.act
        expand = nn.Sequential(
            self.expand_conv.export(self.slot.in_channels, mid),
            self.expand_bn.export(mid),
            _act(act),
        )
        depthwise = nn.Sequential(
            self.depthwise.export(mid, self.kernel), self.depthwise_bn.export(mid), _act(act)
        )
        se: nn.Module = self.se.export(mid) if self.se is not None else nn.Identity()
        project = nn.Sequential(
            self.project.export(mid, self.slot.out_channels), copy.deepcopy(self.project_bn)
        )
        return MBBlock(expand, depthwise, se, project, self.slot.skip)

    @torch.no_grad()
    def reorganize_channels(self, trained_ratios: Sequence[float] = ()) -> None:
        """Sort hidden channels by importance (L1 norm of their projection weights), as OFA's
        `re_organize_middle_weights`, so that the first channels (kept by small expand ratios)
        are the most important ones; the SE hidden units are sorted likewise.

        Args:
            trained_ratios: expand ratios already trained in an earlier shrinking phase. Their
                nested channel groups (the first `mid(e)` channels for each e) are kept as
                groups and sorted only within, so those subnets keep their channels (OFA's
                `expand_ratio_stage`). Empty: one global sort.
        """
        importance = self.project.weight.abs().sum(dim=(0, 2, 3))
        bounds = sorted({self.slot.mid(e) for e in trained_ratios})
        if bounds:
            # a rank offset per group: every channel of an inner group outranks outer ones
            group = torch.bucketize(
                torch.arange(importance.numel()), torch.tensor(bounds), right=True
            )
            importance = importance - group.to(importance.dtype) * (importance.max() + 1.0)
        order = torch.argsort(importance, descending=True)
        self.project.weight.copy_(self.project.weight[:, order])
        self.expand_conv.weight.copy_(self.expand_conv.weight[order])
        self.depthwise.weight.copy_(self.depthwise.weight[order])
        for bn in (self.expand_bn, self.depthwise_bn):
            _permute_bn(bn, order)
        if self.se is not None:
            reduce, expand = self.se.reduce, self.se.expand
            expand.weight.copy_(expand.weight[order])
            expand.bias.copy_(expand.bias[order])
            reduce.weight.copy_(reduce.weight[:, order])
            hidden_order = torch.argsort(expand.weight.abs().sum(dim=0), descending=True)
            expand.weight.copy_(expand.weight[:, hidden_order])
            reduce.weight.copy_(reduce.weight[hidden_order])
            reduce.bias.copy_(reduce.bias[hidden_order])


def _permute_bn(bn: nn.BatchNorm2d, order: Tensor) -> None:
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        assert tensor is not None
        tensor.data.copy_(tensor.data[order])


def _act(name: str) -> nn.Module:
    return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish(inplace=True)


class OFAMobileNetV3Supernet(Supernet):
    """OFA's `OFAMobileNetV3` with elastic kernel, expand ratio, depth (and resolution, which
    the caller applies by resizing inputs).

    Args:
        space: the space it serves (sizes, class count, strides).
        seed: seed of the weight initialisation (OFA's he_fout for convs).
    """

    def __init__(self, space: OFAMobileNetV3Space, *, seed: int = 0) -> None:
        super().__init__()
        self.space: OFAMobileNetV3Space = space
        layout = space.layout
        stem_desc, first_desc = layout.stem(space.resolutions[-1])
        self.stem = build_layer(stem_desc)
        self.first_block = build_layer(first_desc)
        self.blocks = nn.ModuleList(DynamicMBBlock(slot) for slot in space.slots)
        self.head = Head.from_desc(layout.head(1), dropout=space.dropout)
        self._active: dict[str, Any] = {}
        self._running: list[int] = []
        # NHWC activations: oneDNN's depthwise kernels are about 2x faster in this layout on
        # CPU (see bench/supernet_throughput.py); outputs are identical either way
        self.channels_last = True
        self.init_weights(seed)
        self.set_active(space.largest())

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """He (fan-out) normal convs, uniform linears with zero bias, BN 1/0 (OFA's init)."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | DynamicConv2d | DynamicDepthwiseConv2d):
                weight = module.weight
                fan_out = weight.shape[0] * weight.shape[2] * weight.shape[3]
                weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
            elif isinstance(module, nn.Linear | DynamicLinear):
                bound = 1.0 / math.sqrt(module.weight.shape[1])
                module.weight.uniform_(-bound, bound, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def set_active(self, arch: Arch) -> None:
        arch = self.space.normalize(arch)
        running = []
        for i, (block, slot) in enumerate(zip(self.blocks, self.space.slots, strict=True)):
            if slot.index < arch["depth"][slot.stage]:
                assert isinstance(block, DynamicMBBlock)
                block.set_active(arch["kernel_size"][i], arch["expand_ratio"][i])
                running.append(i)
        self._active, self._running = arch, running

    def active(self) -> dict[str, Any]:
        return copy.deepcopy(self._active)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.first_block(self.stem(x))
        for i in self._running:
            x = self.blocks[i](x)
        return self.head(x)  # type: ignore[no-any-return]

    def extract_subnet(self, arch: Arch) -> nn.Module:
        """A static copy of `arch` (the active selection is restored afterwards)."""
        previous = self._active
        self.set_active(arch)
        try:
            blocks: list[nn.Module] = [copy.deepcopy(self.first_block)]
            for i in self._running:
                block = self.blocks[i]
                assert isinstance(block, DynamicMBBlock)
                blocks.append(block.export())
            subnet = MobileNetV3Subnet(copy.deepcopy(self.stem), blocks, copy.deepcopy(self.head))
        finally:
            self.set_active(previous)
        return subnet.train(self.training)

    def reorganize_channels(self, trained_ratios: Sequence[float] = ()) -> None:
        """Sort every block's hidden channels by importance (see `DynamicMBBlock`); call before
        a phase that unlocks smaller expand ratios, then rebuild the optimizer (its state is
        indexed by the old channel positions)."""
        for block in self.blocks:
            assert isinstance(block, DynamicMBBlock)
            block.reorganize_channels(trained_ratios)

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        """A standalone static module (random weights) for a `space.block_keys()` key, and its
        batch-1 input shape."""
        from nas.errors import ConfigError
        from search_spaces.ofa_mbv3.layout import parse_key

        try:
            desc = parse_key(key)
        except ValueError as exc:
            raise ConfigError(f"{exc}; keys come from space.block_keys()") from None
        return build_layer(desc), (1, desc.in_channels, desc.resolution, desc.resolution)


__all__ = ["DynamicMBBlock", "OFAMobileNetV3Supernet"]
