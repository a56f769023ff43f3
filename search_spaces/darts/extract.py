"""Copy a DARTS supernet's shared weights into the evaluation network of one genotype.

The supernet stores each state's edges batched (see `mixed.py`); an edge's weights are the
slice `[edge * C, (edge + 1) * C)` of the batched tensors. Batch norms of the search network
are affine-free, so the evaluation network's BN scales stay at 1 and shifts at 0.

PC-DARTS (partial channels K > 1) searches with ops on C/K channels, while the evaluation
network runs them on all C: there is nothing to copy. `build_eval_network` then returns the
network freshly initialised and logs a warning (the DARTS recipe retrains the evaluation
network from scratch anyway, `nas train --genotype`); callers that need the supernet's
weights pass `require_weights=True` and get a `ConfigError` instead of a random network.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from nas.errors import ConfigError
from search_spaces.darts.mixed import BNStats, ConvOp, ConvStage, FactorizedReduceOp, StateOps
from search_spaces.darts.network import EvalCell, NetworkCIFAR
from search_spaces.darts.ops import FactorizedReduce

if TYPE_CHECKING:
    from search_spaces.darts.supernet import DartsSupernet, SearchCell

logger = logging.getLogger(__name__)


def _copy_bn(source: BNStats, part: slice, target: nn.BatchNorm2d) -> None:
    assert target.running_mean is not None and target.running_var is not None
    target.running_mean.copy_(source.running_mean[part])  # type: ignore[index]
    target.running_var.copy_(source.running_var[part])  # type: ignore[index]


def _copy_stage(stage: ConvStage, edge: int, target: nn.Module) -> None:
    part = slice(edge * stage.channels, (edge + 1) * stage.channels)
    layers = list(cast(nn.Sequential, target))
    cast(nn.Conv2d, layers[1]).weight.copy_(stage.depthwise[part])
    cast(nn.Conv2d, layers[2]).weight.copy_(stage.pointwise[part])
    _copy_bn(stage.bn, part, cast(nn.BatchNorm2d, layers[3]))


def _copy_op(cell: SearchCell, source: int, node: int, op_name: str, target: nn.Module) -> None:
    ops = cast(StateOps, cell.states[source])
    edge = cell.targets[source].index(node)
    if op_name in ops.convs:
        conv = cast(ConvOp, ops.convs[op_name])
        stages = list(cast(nn.Sequential, target)) if op_name.startswith("sep") else [target]
        for stage, module in zip(conv.stages, stages, strict=True):
            _copy_stage(cast(ConvStage, stage), edge, module)
    elif op_name == "skip_connect" and isinstance(target, FactorizedReduce):
        fr: FactorizedReduceOp = ops.reduce_skip  # type: ignore[assignment]
        half = fr.channels // 2
        target.conv_1.weight.copy_(fr.conv_1[edge * half: (edge + 1) * half])
        target.conv_2.weight.copy_(fr.conv_2[edge * half: (edge + 1) * half])
        _copy_bn(fr.bn, slice(edge * fr.channels, (edge + 1) * fr.channels), target.bn)


def _copy_cell(cell: SearchCell, target: EvalCell, edges: list[list[Any]]) -> None:
    target.preprocess0.load_state_dict(cell.preprocess0.state_dict(), strict=False)
    target.preprocess1.load_state_dict(cell.preprocess1.state_dict(), strict=False)
    for slot, (op_name, source) in enumerate(edges):
        _copy_op(cell, int(source), slot // 2, op_name, target.ops[slot])


def _no_weights_message(supernet: DartsSupernet) -> str:
    k = supernet.partial_channels
    return (f"a PC-DARTS supernet (partial channels K={k}) runs its ops on 1/{k} of the "
            "channels, so its weights do not fit the evaluation network; expected a supernet "
            "with K=1, or train the genotype from scratch (`nas train --genotype FILE`)")


def copy_weights(supernet: DartsSupernet, net: NetworkCIFAR, genotype: dict[str, Any]) -> None:
    """Fill `net` (same width and depth, K = 1) with the supernet's weights for `genotype`.

    Raises:
        ConfigError: the supernet has partial channels (K > 1): no op weights match.
    """
    if supernet.partial_channels != 1:
        raise ConfigError(_no_weights_message(supernet))
    with torch.no_grad():
        net.stem.load_state_dict(supernet.stem.state_dict())
        net.classifier.load_state_dict(supernet.classifier.state_dict())
        for cell, target in zip(supernet.cells, net.cells, strict=True):
            edges = genotype["reduce" if cell.reduction else "normal"]
            _copy_cell(cell, target, edges)  # type: ignore[arg-type]


def build_eval_network(
    supernet: DartsSupernet, genotype: dict[str, Any], *, require_weights: bool = False
) -> NetworkCIFAR:
    """The evaluation network of `genotype` at the supernet's width and depth.

    With K = 1 it carries the supernet's weights and BN statistics. With partial channels
    (K > 1) it is freshly initialised and a warning is logged, or, with `require_weights`,
    `ConfigError` is raised.
    """
    net = supernet.space.build_network(genotype)
    if supernet.partial_channels == 1:
        copy_weights(supernet, net, genotype)
    elif require_weights:
        raise ConfigError(_no_weights_message(supernet))
    else:
        logger.warning("evaluation network built with fresh weights: %s",
                       _no_weights_message(supernet))
    return net
