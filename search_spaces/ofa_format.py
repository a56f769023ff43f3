"""Once-for-All conventions: its channel rounding and its subnet-config format.

Users bring subnet configs written for Once-for-All (OFA): `{"ks": [...], "e": [...], "d": [...],
"r": R}` for MobileNetV3 and `{"d": [...], "e": [...], "w": [...]}` for ResNet50 (`w` holds
indexes into the width-multiplier list there). These helpers translate them to and from our
canonical spelled-out keys; the spaces then validate the result as usual.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from nas.errors import InvalidArchError

CHANNEL_DIVISOR = 8
"""OFA rounds every channel count to a multiple of 8 (`MyNetwork.CHANNEL_DIVISIBLE`)."""

OFA_KEYS = frozenset({"ks", "e", "d", "r", "w", "wid"})


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Round `value` to the nearest multiple of `divisor`, never more than 10% below it.

    This is the rounding MobileNet and OFA use for every channel count; parameter parity
    with OFA depends on reproducing it exactly.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def is_whole(value: Any) -> bool:
    """An int (not a bool), or a float with an integral value (JSON may write 3 as 3.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return float(value).is_integer()


def check_choice_list(
    arch: Mapping[str, Any], key: str, length: int, choices: Sequence[float]
) -> None:
    """Raise `InvalidArchError` naming `key[i]` unless `arch[key]` is `length` valid choices."""
    values = arch[key]
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidArchError(f"{key}: expected a list of {length} values, got {values!r}")
    if len(values) != length:
        raise InvalidArchError(f"{key}: expected {length} values, got {len(values)}")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value not in choices:
            raise InvalidArchError(f"{key}[{i}]: expected one of {list(choices)}, got {value!r}")


def is_ofa_format(obj: Any) -> bool:
    """True when `obj` is a mapping using OFA's short keys (and none of ours)."""
    return isinstance(obj, Mapping) and bool(obj) and set(obj) <= OFA_KEYS


def _resolution(value: Any) -> Any:
    """OFA writes the resolution as an int or as a one-element list (`"r": [224]`)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 1:
            raise InvalidArchError(
                f"r: expected one resolution (an int or a one-element list), got {list(value)}"
            )
        return value[0]
    return value


def mbv3_from_ofa(obj: Mapping[str, Any], *, width_mult: float) -> dict[str, Any]:
    """Translate an OFA MobileNetV3 config to our canonical keys (not yet validated).

    `w`, when present, must equal the space's width multiplier: OFA fixes it per network.
    A missing `r` is left out, so the space fills in its default resolution.
    """
    if "w" in obj and obj["w"] is not None and float(obj["w"]) != float(width_mult):
        raise InvalidArchError(
            f"w: expected the space's width multiplier {width_mult}, got {obj['w']}; "
            "build the space with --width-mult matching the config"
        )
    arch: dict[str, Any] = {}
    for short, long in (("ks", "kernel_size"), ("e", "expand_ratio"), ("d", "depth")):
        if short not in obj:
            raise InvalidArchError(
                f"{short}: missing from the OFA-format config (keys ks, e, d, r)"
            )
        arch[long] = obj[short]
    if obj.get("r") is not None:
        arch["resolution"] = _resolution(obj["r"])
    return arch


def mbv3_to_ofa(arch: Mapping[str, Any]) -> dict[str, Any]:
    """Our canonical MobileNetV3 arch in OFA's format (`r` as an int)."""
    return {
        "ks": list(arch["kernel_size"]),
        "e": list(arch["expand_ratio"]),
        "d": list(arch["depth"]),
        "r": int(arch["resolution"]),
    }


def resnet_from_ofa(
    obj: Mapping[str, Any], *, width_mult_list: Sequence[float], max_depth: int
) -> dict[str, Any]:
    """Translate an OFA ResNet config (`d` of 5, `e` of 18, `w` of 6 indexes) to canonical keys.

    OFA's `d[0]` drives the input stem: the residual stem conv runs only when it equals the
    largest depth choice; `w` holds indexes into the width-multiplier list.
    """
    for key in ("d", "e", "w"):
        if key not in obj:
            raise InvalidArchError(
                f"{key}: missing from the OFA-format ResNet config (keys d, e, w)"
            )
    depth, widths = list(obj["d"]), list(obj["w"])
    if len(depth) != 5:
        raise InvalidArchError(f"d: expected 5 values (stem + 4 stages), got {len(depth)}")
    mults = []
    for i, index in enumerate(widths):
        if not isinstance(index, int) or not 0 <= index < len(width_mult_list):
            raise InvalidArchError(
                f"w[{i}]: expected an index in 0..{len(width_mult_list) - 1}, got {index!r}"
            )
        mults.append(float(width_mult_list[index]))
    arch: dict[str, Any] = {
        "stem_residual": depth[0] == max_depth,
        "depth": depth[1:],
        "expand_ratio": list(obj["e"]),
        "width_mult": mults,
    }
    if obj.get("r") is not None:
        arch["resolution"] = _resolution(obj["r"])
    return arch


def resnet_to_ofa(
    arch: Mapping[str, Any], *, width_mult_list: Sequence[float], max_depth: int
) -> dict[str, Any]:
    """Our canonical ResNet arch in OFA's format."""
    index = {float(m): i for i, m in enumerate(width_mult_list)}
    return {
        "d": [max_depth if arch["stem_residual"] else 0, *arch["depth"]],
        "e": list(arch["expand_ratio"]),
        "w": [index[float(m)] for m in arch["width_mult"]],
        "r": int(arch["resolution"]),
    }
