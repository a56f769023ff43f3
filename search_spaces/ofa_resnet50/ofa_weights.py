"""Once-for-All's `OFAResNets` checkpoints <-> `OFAResNet50Supernet`, tensor by tensor.

Both networks have the same modules in the same order, so the map only renames (OFA's names on
the left; `Dynamic*` layers add one `.conv` / `.bn` / `.linear` level):

    input_stem.0.{conv.conv,bn.bn}             stem1.{conv,bn}
    input_stem.1.conv.{conv.conv,bn.bn}        stem2.{conv,bn} (the residual, skippable conv)
    input_stem.2.{conv.conv,bn.bn}             stem3.{conv,bn}
    blocks.i.conv{1,2,3}.{conv.conv,bn.bn}     blocks.i.conv{1,2,3}.{conv,bn}
    blocks.i.downsample.{conv.conv,bn.bn}      blocks.i.shortcut.{conv,bn} (first block of a stage)
    classifier.linear.linear.{weight,bias}     classifier.{weight,bias}

Our `width_scale` is OFA's largest `width_mult` (its `width_mult_list` being that times
0.65/0.8/1.0); the published `ofa_resnet50` is 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from search_spaces import ofa_keymap as keymap
from search_spaces.ofa_resnet50.layout import (
    BASE_DEPTHS,
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    STAGE_WIDTHS,
    WIDTH_CHOICES,
)

if TYPE_CHECKING:
    from search_spaces.ofa_resnet50.space import OFAResNet50Space

OFA_CLASS = "OFAResNets"
EXPECTED = (  # what a file should be when it lacks the tensors sizes are read from
    f"a checkpoint of Once-for-All's {OFA_CLASS} (pass --space ofa-mbv3 for an OFAMobileNetV3 one)"
)


def _conv_bn(ofa: str, ours: str) -> list[keymap.TensorPair]:
    conv = keymap.TensorPair(f"{ofa}.conv.conv.weight", f"{ours}.conv.weight")
    return [conv, *keymap.bn_pairs(f"{ofa}.bn.bn", f"{ours}.bn")]


def ofa_key_map() -> keymap.OFAKeyMap:
    """Every tensor of `OFAResNets(depth_list=[0,1,2], expand_ratio_list=[0.2,0.25,0.35],
    width_mult_list=[0.65,0.8,1.0])` and of our supernet (names do not depend on widths)."""
    pairs = _conv_bn("input_stem.0", "stem1")
    pairs += _conv_bn("input_stem.1.conv", "stem2")
    pairs += _conv_bn("input_stem.2", "stem3")
    index = 0
    for base in BASE_DEPTHS:
        for j in range(base + max(DEPTH_CHOICES)):
            for conv in ("conv1", "conv2", "conv3"):
                pairs += _conv_bn(f"blocks.{index}.{conv}", f"blocks.{index}.{conv}")
            if j == 0:
                pairs += _conv_bn(f"blocks.{index}.downsample", f"blocks.{index}.shortcut")
            index += 1
    pairs += keymap.linear_pairs("classifier.linear.linear", "classifier")
    return keymap.OFAKeyMap(pairs)


def space_kwargs(
    state: Mapping[str, Tensor], *, width_mult: float | None, source: str
) -> dict[str, Any]:
    """Class count, image channels and `width_scale` of the network in `state`.

    The scale is OFA's largest width multiplier, read from the classifier's input width
    (`make_divisible(2048 * scale)`) unless given; the shape checks catch a wrong guess.
    """
    stem, classifier = (
        keymap.tensor_shape(state, key, source=source, expected=EXPECTED)
        for key in ("input_stem.0.conv.conv.weight", "classifier.linear.linear.weight")
    )
    scale = width_mult if width_mult is not None else classifier[1] / STAGE_WIDTHS[-1]
    return {"num_classes": classifier[0], "in_channels": stem[1], "width_scale": scale}


def ofa_kwargs(space: OFAResNet50Space) -> dict[str, Any]:
    """Arguments of OFA's `OFAResNets(...)` that builds the network of `space`.

    Raises:
        ConfigError: OFA has no such network (small-input stem, other than 3 channels).
    """
    keymap.check_ofa_input(OFA_CLASS, small_input=space.small_input, in_channels=space.in_channels)
    return {
        "n_classes": space.num_classes, "depth_list": list(DEPTH_CHOICES),
        "expand_ratio_list": list(EXPAND_CHOICES),
        "width_mult_list": [m * space.width_scale for m in WIDTH_CHOICES],
        "dropout_rate": space.dropout,
    }


__all__ = ["OFA_CLASS", "ofa_key_map", "ofa_kwargs", "space_kwargs"]
