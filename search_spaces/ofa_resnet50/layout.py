"""The skeleton of Once-for-All's ResNet50 (`OFAResNets`) and the layers a subnet executes.

Pure python (no torch). OFA's ResNet50 space: an input stem of three 3x3 convs (the middle one
residual and skippable), a 3x3 stride-2 max-pool, four stages of bottleneck blocks (base depths
2/2/4/2 plus 0, 1 or 2 elastic blocks, widths 256/512/1024/2048 times a per-stage multiplier
0.65/0.8/1.0, expand ratios 0.2/0.25/0.35 per block), global pooling and the classifier. The
first block of each stage downsamples its shortcut by average pooling then a 1x1 conv + BN.

Small inputs (`small_input=True`): the stem's first conv uses stride 1 and the max-pool is left
out (total downsampling 8 instead of 32); parameter counts do not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from search_spaces.ofa_format import make_divisible

STAGE_WIDTHS = (256, 512, 1024, 2048)
BASE_DEPTHS = (2, 2, 4, 2)
STAGE_STRIDES = (1, 2, 2, 2)
DEPTH_CHOICES = (0, 1, 2)
EXPAND_CHOICES = (0.2, 0.25, 0.35)
WIDTH_CHOICES = (0.65, 0.8, 1.0)
STEM_WIDTH = 64


def stem_widths(mult: float, scale: float = 1.0) -> tuple[int, int]:
    """(first/middle stem conv width, stem output width) for a width multiplier (OFA's rule).

    `scale` shrinks every base width (1.0 is OFA's network; tests use small values).
    """
    out = make_divisible(STEM_WIDTH * scale * mult)
    return make_divisible(out // 2), out


def stage_width(stage: int, mult: float, scale: float = 1.0) -> int:
    return make_divisible(STAGE_WIDTHS[stage] * scale * mult)


def mid_width(out_channels: int, expand: float) -> int:
    return make_divisible(round(out_channels * expand))


def out_side(side: int, stride: int) -> int:
    return (side - 1) // stride + 1


@dataclass(frozen=True)
class ResLayer:
    """One layer group of a ResNet subnet.

    kind: "conv" (3x3 conv-BN-ReLU, `skip` adds the input), "pool" (3x3 stride-2 max-pool),
    "bottleneck" (`skip=False` means a pooled 1x1 conv shortcut) or "classifier" (global
    pooling + linear with `classes` outputs).
    """

    kind: str
    resolution: int
    in_channels: int
    out_channels: int
    mid: int = 0
    stride: int = 1
    skip: bool = False
    classes: int = 0

    @property
    def out_resolution(self) -> int:
        return out_side(self.resolution, self.stride)

    def key(self) -> str:
        base = f"{self.kind}_r{self.resolution}_i{self.in_channels}_o{self.out_channels}"
        if self.kind == "conv":
            return f"{base}_s{self.stride}_skip{int(self.skip)}"
        if self.kind == "bottleneck":
            return f"{base}_m{self.mid}_s{self.stride}_skip{int(self.skip)}"
        if self.kind == "classifier":
            return f"{base}_c{self.classes}"
        return f"{base}_s{self.stride}"

    def params(self) -> int:
        i, m, o = self.in_channels, self.mid, self.out_channels
        if self.kind == "conv":
            return 9 * i * o + 2 * o
        if self.kind == "classifier":
            return i * self.classes + self.classes
        if self.kind == "pool":
            return 0
        shortcut = 0 if self.skip else i * o + 2 * o
        return i * m + 9 * m * m + m * o + 4 * m + 2 * o + shortcut

    def macs(self) -> int:
        """Conv and linear multiply-accumulates at batch 1 (BN, ReLU, pooling, adds excluded)."""
        i, m, o = self.in_channels, self.mid, self.out_channels
        area_in, area_out = self.resolution**2, self.out_resolution**2
        if self.kind == "conv":
            return area_out * 9 * i * o
        if self.kind == "classifier":
            return i * self.classes
        if self.kind == "pool":
            return 0
        shortcut = 0 if self.skip else area_out * i * o
        return area_in * i * m + area_out * (9 * m * m + m * o) + shortcut


_TOKEN = re.compile(r"([a-z]+?)(\d+)$")


def parse_key(key: str) -> ResLayer:
    """Inverse of `ResLayer.key()`; raises `ValueError` on a malformed key."""
    kind, *tokens = key.split("_")
    if kind not in ("conv", "pool", "bottleneck", "classifier"):
        raise ValueError(f"expected a conv_, pool_, bottleneck_ or classifier_ key, got '{key}'")
    fields: dict[str, int] = {}
    for token in tokens:
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(f"unknown token '{token}' in layer key '{key}'")
        fields[match.group(1)] = int(match.group(2))
    try:
        return ResLayer(
            kind,
            fields["r"],
            fields["i"],
            fields["o"],
            mid=fields.get("m", 0),
            stride=fields.get("s", 1),
            skip=bool(fields.get("skip", 0)),
            classes=fields.get("c", 0),
        )
    except KeyError as exc:
        raise ValueError(f"layer key '{key}' lacks field '{exc.args[0]}'") from None
