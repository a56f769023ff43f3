"""Static (non-elastic) MobileNetV3 modules: what `extract_subnet` returns and what the latency
profiler times per layer group. Plain `nn.Conv2d` / `nn.BatchNorm2d` / `nn.Linear` only, with no
data-dependent python control flow, so TorchScript and ONNX export work.
"""

from __future__ import annotations

from torch import Tensor, nn

from nas.layers.dynamic import SqueezeExcite, activation
from search_spaces.ofa_mbv3.layout import LayerDesc


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int,
    *,
    groups: int = 1,
    act: str | None = None,
) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BN (+ activation)."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if act is not None:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class MBBlock(nn.Module):
    """Inverted bottleneck: [1x1 expand-BN-act] dw kxk-BN-act [SE] 1x1 project-BN [+ x]."""

    def __init__(
        self,
        expand: nn.Module,
        depthwise: nn.Module,
        se: nn.Module,
        project: nn.Module,
        skip: bool,
    ) -> None:
        super().__init__()
        self.expand, self.depthwise, self.se, self.project = expand, depthwise, se, project
        self.skip = skip

    @classmethod
    def from_desc(cls, desc: LayerDesc) -> MBBlock:
        """A block with fresh (random) weights shaped as `desc`."""
        mid = desc.mid or desc.in_channels
        expand: nn.Module = (
            conv_bn(desc.in_channels, mid, 1, 1, act=desc.act) if desc.mid else nn.Identity()
        )
        depthwise = conv_bn(mid, mid, desc.kernel, desc.stride, groups=mid, act=desc.act)
        se: nn.Module = SqueezeExcite(mid, desc.se) if desc.se else nn.Identity()
        project = conv_bn(mid, desc.out_channels, 1, 1)
        return cls(expand, depthwise, se, project, desc.skip)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.project(self.se(self.depthwise(self.expand(x))))
        if self.skip:
            return x + y
        return y


class Head(nn.Module):
    """Final 1x1 expand conv-BN-hswish, global average pool, feature mix (1x1 conv on the pooled
    vector, written as a bias-free linear layer) + hswish, dropout and the classifier."""

    def __init__(
        self,
        final_expand: nn.Module,
        feature_mix: nn.Linear,
        classifier: nn.Linear,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.final_expand, self.feature_mix, self.classifier = (
            final_expand,
            feature_mix,
            classifier,
        )
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_desc(cls, desc: LayerDesc, dropout: float = 0.0) -> Head:
        return cls(
            conv_bn(desc.in_channels, desc.mid, 1, 1, act="hswish"),
            nn.Linear(desc.mid, desc.out_channels, bias=False),
            nn.Linear(desc.out_channels, desc.classes),
            dropout,
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.final_expand(x).mean((2, 3))
        logits: Tensor = self.classifier(self.dropout(self.act(self.feature_mix(x))))
        return logits


class MobileNetV3Subnet(nn.Module):
    """A standalone subnet: stem conv, blocks (the fixed first block included), head."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.blocks(self.stem(x)))
        return logits


def build_layer(desc: LayerDesc) -> nn.Module:
    """A static module with random weights for one layer group (for latency profiling)."""
    if desc.kind == "stem":
        return conv_bn(desc.in_channels, desc.out_channels, desc.kernel, desc.stride, act=desc.act)
    if desc.kind == "mb":
        return MBBlock.from_desc(desc)
    return Head.from_desc(desc)
