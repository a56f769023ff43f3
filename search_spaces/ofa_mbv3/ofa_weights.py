"""Once-for-All's `OFAMobileNetV3` checkpoints <-> `OFAMobileNetV3Supernet`, tensor by tensor.

Module by module (OFA's names on the left, block `i + 1` of OFA is our elastic block `i`, OFA's
`blocks.0` is our fixed `first_block`):

    first_conv.{conv,bn}                       stem.{0,1}
    blocks.0.conv.{depth_conv,point_linear}    first_block.{depthwise,project}.{0: conv, 1: bn}
    .conv.inverted_bottleneck.{conv.conv,bn.bn}    .expand_conv, .expand_bn
    .conv.depth_conv.conv.conv.weight              .depthwise.weight (7x7, the stored kernel)
    .conv.depth_conv.conv.{7to5,5to3}_matrix       .depthwise.transforms.{7to5,5to3}
    .conv.depth_conv.bn.bn                         .depthwise_bn
    .conv.depth_conv.se.fc.{reduce,expand}         .se.{reduce,expand} (1x1 conv -> linear)
    .conv.point_linear.{conv.conv,bn.bn}           .project, .project_bn
    final_expand_layer.{conv,bn}               head.final_expand.{0,1}
    feature_mix_layer.conv.weight              head.feature_mix.weight (1x1 conv -> linear)
    classifier.linear.{weight,bias}            head.classifier.{weight,bias}

The kernel matrices need no change: OFA's 5x5 kernel is `F.linear(crop5(W7), M7to5)` and its
3x3 kernel `F.linear(crop3(that 5x5), M5to3)`. `DynamicDepthwiseConv2d` multiplies the flat
5x5 crop of W7 by `M7to5.t()` for 5x5 and by `M7to5.t()[:, centre3] @ M5to3.t()` for 3x3: the
same linear maps, associated differently (results differ by float rounding only, ~1e-7).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from nas.errors import IncompatibleArtifactError
from search_spaces.ofa_keymap import (
    OFAKeyMap,
    TensorPair,
    bn_pairs,
    check_ofa_input,
    linear_pairs,
    tensor_shape,
)
from search_spaces.ofa_mbv3.layout import (
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_STAGES,
    STAGE_SE,
    MBV3Layout,
)

if TYPE_CHECKING:
    from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space

OFA_CLASS = "OFAMobileNetV3"
WIDTH_MULTS = (1.0, 1.2)  # what the space supports (OFA published both)
EXPECTED = (  # what a file should be when it lacks the tensors sizes are read from
    f"a checkpoint of Once-for-All's {OFA_CLASS} (pass --space ofa-resnet50 for an OFAResNets one)"
)


def _conv_bn(ofa: str, ours: str) -> list[TensorPair]:
    """A static conv + BN (OFA's `ConvLayer`, `MBConvLayer` parts): our `Sequential(conv, bn)`."""
    conv = TensorPair(f"{ofa}.conv.weight", f"{ours}.0.weight")
    return [conv, *bn_pairs(f"{ofa}.bn", f"{ours}.1")]


def _block_pairs(ofa: str, ours: str, use_se: bool) -> list[TensorPair]:
    """One elastic inverted-bottleneck block (OFA's `DynamicMBConvLayer`)."""
    kernels = sorted(KERNEL_CHOICES)
    pairs = [
        TensorPair(f"{ofa}.inverted_bottleneck.conv.conv.weight", f"{ours}.expand_conv.weight"),
        *bn_pairs(f"{ofa}.inverted_bottleneck.bn.bn", f"{ours}.expand_bn"),
        *(
            TensorPair(f"{ofa}.depth_conv.conv.{big}to{small}_matrix",
                       f"{ours}.depthwise.transforms.{big}to{small}")
            for small, big in zip(kernels[:-1], kernels[1:], strict=True)
        ),
        TensorPair(f"{ofa}.depth_conv.conv.conv.weight", f"{ours}.depthwise.weight"),
        *bn_pairs(f"{ofa}.depth_conv.bn.bn", f"{ours}.depthwise_bn"),
    ]
    if use_se:
        for layer in ("reduce", "expand"):
            se, mine = f"{ofa}.depth_conv.se.fc.{layer}", f"{ours}.se.{layer}"
            pairs.append(TensorPair(f"{se}.weight", f"{mine}.weight", conv1x1=True))
            pairs.append(TensorPair(f"{se}.bias", f"{mine}.bias"))
    pairs.append(TensorPair(f"{ofa}.point_linear.conv.conv.weight", f"{ours}.project.weight"))
    return pairs + bn_pairs(f"{ofa}.point_linear.bn.bn", f"{ours}.project_bn")


def ofa_key_map() -> OFAKeyMap:
    """Every tensor of `OFAMobileNetV3(ks_list=[3,5,7], expand_ratio_list=[3,4,6],
    depth_list=[2,3,4])` and of our supernet (names do not depend on widths or classes)."""
    pairs = _conv_bn("first_conv", "stem")
    first = "blocks.0.conv"
    pairs += _conv_bn(f"{first}.depth_conv", "first_block.depthwise")
    pairs += _conv_bn(f"{first}.point_linear", "first_block.project")
    for i in range(NUM_STAGES * MAX_DEPTH):
        pairs += _block_pairs(f"blocks.{i + 1}.conv", f"blocks.{i}", STAGE_SE[i // MAX_DEPTH])
    pairs += _conv_bn("final_expand_layer", "head.final_expand")
    pairs.append(TensorPair("feature_mix_layer.conv.weight", "head.feature_mix.weight", True))
    pairs += linear_pairs("classifier.linear", "head.classifier")
    return OFAKeyMap(pairs)


def space_kwargs(
    state: Mapping[str, Tensor], *, width_mult: float | None, source: str
) -> dict[str, Any]:
    """Class count, image channels and width multiplier of the network in `state`.

    The width multiplier is the one of `WIDTH_MULTS` whose stem and classifier widths match
    (OFA's w1.0: 16 and 1280, w1.2: 24 and 1536), unless given.
    """
    stem, classifier = (
        tensor_shape(state, key, source=source, expected=EXPECTED)
        for key in ("first_conv.conv.weight", "classifier.linear.weight")
    )
    kwargs: dict[str, Any] = {"num_classes": classifier[0], "in_channels": stem[1]}
    if width_mult is not None:
        return {**kwargs, "width_mult": width_mult}
    for mult in WIDTH_MULTS:
        widths = MBV3Layout(stem[1], classifier[0], mult, False).widths
        if (widths[0], widths[-1]) == (stem[0], classifier[1]):
            return {**kwargs, "width_mult": mult}
    known = ", ".join(
        f"{m}: {'/'.join(map(str, MBV3Layout(3, 1, m, False).widths[::8]))}" for m in WIDTH_MULTS
    )
    raise IncompatibleArtifactError(
        f"{source}: stem width {stem[0]} and classifier input {classifier[1]} match no width "
        f"multiplier of ofa-mbv3 ({known}); only OFA networks of these widths can be imported"
    )


def ofa_kwargs(space: OFAMobileNetV3Space) -> dict[str, Any]:
    """Arguments of OFA's `OFAMobileNetV3(...)` that builds the network of `space`.

    Raises:
        ConfigError: OFA has no such network (small-input strides, other than 3 channels).
    """
    check_ofa_input(OFA_CLASS, small_input=space.small_input, in_channels=space.in_channels)
    return {
        "n_classes": space.num_classes, "width_mult": space.width_mult,
        "ks_list": list(KERNEL_CHOICES), "expand_ratio_list": list(EXPAND_CHOICES),
        "depth_list": list(DEPTH_CHOICES), "dropout_rate": space.dropout,
    }


__all__ = ["OFA_CLASS", "WIDTH_MULTS", "ofa_key_map", "ofa_kwargs", "space_kwargs"]
