"""Elastic (weight-sliced) layers shared by the supernets."""

from __future__ import annotations

from nas.layers.dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSqueezeExcite,
    SqueezeExcite,
    activation,
)
from nas.layers.fuse import fuse_conv_bn

__all__ = [
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicDepthwiseConv2d",
    "DynamicLinear",
    "DynamicSqueezeExcite",
    "SqueezeExcite",
    "activation",
    "fuse_conv_bn",
]
