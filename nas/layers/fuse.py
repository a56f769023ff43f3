"""Fold eval-mode batch norms into the convolutions before them, for fast evaluation.

`y = bn(conv(x))` with frozen statistics is an affine map per channel, so the conv's weight and
bias can absorb it. The fused network computes the same function up to float rounding, skips a
full pass over every activation tensor, and is what evaluation and search run after BN
recalibration. Only for inference: the fused model no longer trains like the original.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fused_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv computing `bn(conv(x))` with `bn`'s running statistics."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                    conv.stride, conv.padding, conv.dilation,  # type: ignore[arg-type]
                    conv.groups, bias=True).to(conv.weight.device)
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    assert out.bias is not None
    out.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return out


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BN that directly follows a conv, in place; returns `model` in eval mode.

    Handles `nn.Sequential(..., Conv2d, BatchNorm2d, ...)` and modules that declare
    `conv_then_bn = True` and hold a `conv` and a `bn` attribute applied in that order.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:], strict=False):
                conv, bn = module._modules[first], module._modules[second]
                if _fusable(conv, bn):
                    module._modules[first] = fused_conv(conv, bn)  # type: ignore[arg-type]
                    module._modules[second] = nn.Identity()
        if getattr(module, "conv_then_bn", False):
            attr_conv, attr_bn = getattr(module, "conv", None), getattr(module, "bn", None)
            if _fusable(attr_conv, attr_bn):
                module.conv = fused_conv(attr_conv, attr_bn)  # type: ignore[arg-type]
                module.bn = nn.Identity()
    return model


def _fusable(conv: object, bn: object) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and bn.affine
        and bn.num_features == conv.out_channels
    )
