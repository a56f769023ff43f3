"""Structural features of the Once-for-All spaces, from the layer shape spelled in each block key.

Every block key of `ofa-mbv3` and `ofa-resnet50` is a layer group whose shapes the key states
in full (`mb_r28_i40_m240_o40_k5_s1_hswish_se64_skip1`), so each key is parsed once into the
primitive operations it runs (1x1 convolutions, a depthwise kxk, batch norms, activations,
squeeze-excite, the residual add), and a subnet's features are the sum of its keys' rows.
The multiply-accumulates of the operations add up exactly to the space's own `complexity()`
(tested), so these features refine the space's cost model rather than invent another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from predictors.structure.base import DESCRIBERS, KeyTableDescriber, Op, op_names, ops_row
from search_spaces.base import SearchSpace

VERSION = "ofa/1"


def _conv(kind: str, area_in: int, area_out: int, c_in: int, c_out: int, k: int,
          act: str | None) -> list[Op]:
    """A convolution (`kind` conv, pw or dw<k>) with its batch norm and optional activation."""
    depthwise = kind.startswith("dw")
    macs = area_out * c_out * k * k * (1 if depthwise else c_in)
    weights = c_out * k * k * (1 if depthwise else c_in)
    ops = [Op(kind, macs, area_in * c_in + area_out * c_out, weights),
           Op("bn", 0, 2 * area_out * c_out, 2 * c_out)]
    if act is not None:
        ops.append(Op(act, 0, 2 * area_out * c_out))
    return ops


def _squeeze_excite(area: int, channels: int, hidden: int) -> list[Op]:
    return [
        Op("pool", 0, area * channels + channels),
        Op("fc", channels * hidden, channels + hidden, channels * hidden),
        Op("relu", 0, 2 * hidden),
        Op("fc", hidden * channels, hidden + channels, hidden * channels),
        Op("hswish", 0, 2 * channels),  # hard sigmoid: the same elementwise cost
        Op("scale", 0, 3 * area * channels),
    ]


def mbv3_ops(desc: Any) -> list[Op]:
    """Primitive operations of one `ofa_mbv3.layout.LayerDesc`."""
    i, m, o, k = desc.in_channels, desc.mid, desc.out_channels, desc.kernel
    a_in, a_out = desc.resolution**2, desc.out_resolution**2
    if desc.kind == "stem":
        return _conv("conv", a_in, a_out, i, o, k, desc.act)
    if desc.kind == "head":
        return [
            *_conv("pw", a_in, a_in, i, m, 1, "hswish"),
            Op("pool", 0, a_in * m + m),
            Op("fc", m * o, m + o, m * o),
            Op("hswish", 0, 2 * o),
            Op("fc", o * desc.classes, o + desc.classes, o * desc.classes),
        ]
    if k not in (3, 5, 7):
        raise ValueError(f"no depthwise kind for kernel {k} in '{desc.key()}'")
    c = m or i
    ops = _conv("pw", a_in, a_in, i, m, 1, desc.act) if m else []
    ops += _conv(f"dw{k}", a_in, a_out, c, c, k, desc.act)
    if desc.se:
        ops += _squeeze_excite(a_out, c, desc.se)
    ops += _conv("pw", a_out, a_out, c, o, 1, None)
    if desc.skip:
        ops.append(Op("add", 0, 3 * a_out * o))
    return ops


def resnet_ops(layer: Any) -> list[Op]:
    """Primitive operations of one `ofa_resnet50.layout.ResLayer`."""
    i, m, o = layer.in_channels, layer.mid, layer.out_channels
    a_in, a_out = layer.resolution**2, layer.out_resolution**2
    if layer.kind == "conv":
        ops = _conv("conv", a_in, a_out, i, o, 3, "relu")
        return ops + ([Op("add", 0, 3 * a_out * o)] if layer.skip else [])
    if layer.kind == "pool":
        return [Op("pool", 0, a_in * i + a_out * o)]
    if layer.kind == "classifier":
        return [Op("pool", 0, a_in * i + i),
                Op("fc", i * layer.classes, i + layer.classes, i * layer.classes)]
    ops = _conv("pw", a_in, a_in, i, m, 1, "relu")
    ops += _conv("conv", a_in, a_out, m, m, 3, "relu")
    ops += _conv("pw", a_out, a_out, m, o, 1, None)
    if not layer.skip:
        if layer.stride > 1:
            ops.append(Op("pool", 0, a_in * i + a_out * i))
        ops += _conv("pw", a_out, a_out, i, o, 1, None)
    return ops + [Op("add", 0, 3 * a_out * o), Op("relu", 0, 2 * a_out * o)]


def _table(keys: Sequence[str], rows: Callable[[str], list[Op]]) -> KeyTableDescriber:
    if not keys:
        raise ValueError("no block keys to describe")
    return KeyTableDescriber(op_names(), np.stack([ops_row(rows(key)) for key in keys]), VERSION)


@DESCRIBERS.register("ofa-mbv3")
def mbv3_describer(space: SearchSpace, keys: Sequence[str]) -> KeyTableDescriber:
    from search_spaces.ofa_mbv3.layout import parse_key

    return _table(keys, lambda key: mbv3_ops(parse_key(key)))


@DESCRIBERS.register("ofa-resnet50")
def resnet_describer(space: SearchSpace, keys: Sequence[str]) -> KeyTableDescriber:
    from search_spaces.ofa_resnet50.layout import parse_key

    return _table(keys, lambda key: resnet_ops(parse_key(key)))
