"""The fixed skeleton of Once-for-All's MobileNetV3 and the layers a subnet executes.

Pure python (no torch): the space uses it to count parameters and MACs analytically, the
supernet and the static subnet builder use it to size their layers, and the latency profiler
uses the per-layer descriptions (`LayerDesc`) through their string keys.

Skeleton (OFA's `OFAMobileNetV3`, base widths scaled by `width_mult` with `make_divisible`):
a 3x3 stride-2 conv (16, h-swish); a fixed depthwise-separable block (16, ReLU, residual);
5 elastic stages of up to 4 inverted-bottleneck blocks with widths 24/40/80/112/160,
first-block strides 2/2/2/1/2, ReLU/ReLU/h-swish/h-swish/h-swish and squeeze-excite in the
stages of width 40, 112 and 160; a final 1x1 expand conv (960), global pooling, a 1x1 feature-mix
conv (1280, no BN, no bias) and the classifier.

Small inputs (`small_input=True`): the stem conv and the first elastic stage (width 24) use
stride 1 instead of 2, so the total downsampling is 8 instead of 32 (32x32 ends at 4x4, 8x8 at
1x1). Parameter counts do not depend on strides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from search_spaces.ofa_format import make_divisible

BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
STAGE_SE = (False, True, False, True, True)
KERNEL_CHOICES = (3, 5, 7)
EXPAND_CHOICES = (3, 4, 6)
DEPTH_CHOICES = (2, 3, 4)
NUM_STAGES = 5
MAX_DEPTH = 4
SE_REDUCTION = 4


@dataclass(frozen=True)
class LayerDesc:
    """One layer group the static subnet executes, with all that sets its cost.

    kind: "stem" (conv-BN-act), "mb" (inverted bottleneck; `mid == 0` means no expansion
    conv, as in the fixed first block), or "head" (final expand conv, pooling, feature mix,
    classifier; `mid` is the final-expand width, `out` the feature-mix width, `classes`).
    """

    kind: str
    resolution: int  # input side length
    in_channels: int
    out_channels: int
    mid: int = 0
    kernel: int = 1
    stride: int = 1
    act: str = "relu"
    se: int = 0  # squeeze-excite hidden width, 0 = no squeeze-excite
    skip: bool = False  # identity shortcut
    classes: int = 0

    @property
    def out_resolution(self) -> int:
        return (self.resolution - 1) // self.stride + 1

    def key(self) -> str:
        """Canonical string, e.g. `mb_r16_i24_m144_o40_k5_s2_relu_se40_skip0`."""
        if self.kind == "stem":
            return (
                f"stem_r{self.resolution}_i{self.in_channels}_o{self.out_channels}"
                f"_k{self.kernel}_s{self.stride}_{self.act}"
            )
        if self.kind == "mb":
            return (
                f"mb_r{self.resolution}_i{self.in_channels}_m{self.mid}_o{self.out_channels}"
                f"_k{self.kernel}_s{self.stride}_{self.act}_se{self.se}_skip{int(self.skip)}"
            )
        return (
            f"head_r{self.resolution}_i{self.in_channels}_m{self.mid}_o{self.out_channels}"
            f"_c{self.classes}"
        )

    def params(self) -> int:
        """Trainable parameters (BN counts weight and bias; running statistics are buffers)."""
        i, m, o = self.in_channels, self.mid, self.out_channels
        if self.kind == "stem":
            return i * o * self.kernel**2 + 2 * o
        if self.kind == "head":
            return i * m + 2 * m + m * o + o * self.classes + self.classes
        c = m or i
        total = (i * m + 2 * m) if m else 0
        total += c * self.kernel**2 + 2 * c + c * o + 2 * o
        if self.se:
            total += 2 * c * self.se + self.se + c
        return total

    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers at batch 1.

        BN, activations, pooling, residual additions, squeeze-excite scaling and biases are
        not counted (the common convention, and OFA's `count_net_flops`).
        """
        i, m, o = self.in_channels, self.mid, self.out_channels
        area_in, area_out = self.resolution**2, self.out_resolution**2
        if self.kind == "stem":
            return area_out * o * i * self.kernel**2
        if self.kind == "head":
            return area_in * i * m + m * o + o * self.classes
        c = m or i
        total = area_in * i * m if m else 0
        total += area_out * c * self.kernel**2 + area_out * c * o
        if self.se:
            total += 2 * c * self.se
        return total


_TOKEN = re.compile(r"([a-z]+?)(\d+)$")


def parse_key(key: str) -> LayerDesc:
    """Inverse of `LayerDesc.key()`; raises `ValueError` on a malformed key."""
    kind, *tokens = key.split("_")
    if kind not in ("stem", "mb", "head"):
        raise ValueError(f"expected a key starting with stem_, mb_ or head_, got '{key}'")
    fields: dict[str, int] = {}
    act = "relu"
    for token in tokens:
        match = _TOKEN.match(token)
        if match:
            fields[match.group(1)] = int(match.group(2))
        elif token in ("relu", "hswish"):
            act = token
        else:
            raise ValueError(f"unknown token '{token}' in layer key '{key}'")
    try:
        return LayerDesc(
            kind=kind,
            resolution=fields["r"],
            in_channels=fields["i"],
            out_channels=fields["o"],
            mid=fields.get("m", 0),
            kernel=fields.get("k", 1),
            stride=fields.get("s", 1),
            act=act,
            se=fields.get("se", 0),
            skip=bool(fields.get("skip", 0)),
            classes=fields.get("c", 0),
        )
    except KeyError as exc:
        raise ValueError(f"layer key '{key}' lacks field '{exc.args[0]}'") from None


@dataclass(frozen=True)
class BlockSlot:
    """One elastic block position of the supernet (stage `stage`, index `index` in it)."""

    stage: int
    index: int
    in_channels: int
    out_channels: int
    stride: int
    act: str
    use_se: bool

    @property
    def skip(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def mid(self, expand_ratio: float) -> int:
        return make_divisible(round(self.in_channels * expand_ratio))


def se_width(channels: int) -> int:
    """Squeeze-excite hidden width for `channels` (OFA: `make_divisible(c // 4, 8)`)."""
    return make_divisible(channels // SE_REDUCTION)


@dataclass(frozen=True)
class MBV3Layout:
    """Channel widths and strides of the supernet for one width multiplier and input kind."""

    in_channels: int
    num_classes: int
    width_mult: float
    small_input: bool

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(make_divisible(w * self.width_mult) for w in BASE_WIDTHS)

    @property
    def stem_stride(self) -> int:
        return 1 if self.small_input else 2

    def stage_stride(self, stage: int) -> int:
        return 1 if (self.small_input and stage == 0) else STAGE_STRIDES[stage]

    def slots(self) -> tuple[BlockSlot, ...]:
        widths = self.widths
        slots, channels = [], widths[1]
        for stage in range(NUM_STAGES):
            for index in range(MAX_DEPTH):
                stride = self.stage_stride(stage) if index == 0 else 1
                slots.append(
                    BlockSlot(
                        stage,
                        index,
                        channels,
                        widths[stage + 2],
                        stride,
                        STAGE_ACTS[stage],
                        STAGE_SE[stage],
                    )
                )
                channels = widths[stage + 2]
        return tuple(slots)

    def stem(self, resolution: int) -> tuple[LayerDesc, LayerDesc]:
        """The stem conv and the fixed first block at input side `resolution`."""
        c0, c1 = self.widths[0], self.widths[1]
        conv = LayerDesc(
            "stem",
            resolution,
            self.in_channels,
            c0,
            kernel=3,
            stride=self.stem_stride,
            act="hswish",
        )
        first = LayerDesc(
            "mb", conv.out_resolution, c0, c1, mid=0, kernel=3, stride=1, act="relu", skip=c0 == c1
        )
        return conv, first

    def block(self, slot: BlockSlot, resolution: int, kernel: int, expand: float) -> LayerDesc:
        mid = slot.mid(expand)
        return LayerDesc(
            "mb",
            resolution,
            slot.in_channels,
            slot.out_channels,
            mid=mid,
            kernel=kernel,
            stride=slot.stride,
            act=slot.act,
            se=se_width(mid) if slot.use_se else 0,
            skip=slot.skip,
        )

    def head(self, resolution: int) -> LayerDesc:
        widths = self.widths
        return LayerDesc(
            "head", resolution, widths[6], widths[8], mid=widths[7], classes=self.num_classes
        )
