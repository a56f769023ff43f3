"""Batch-norm recalibration: re-estimate running statistics for one subnet.

Weights shared by many subnets leave running statistics that fit none of them exactly (OFA,
section 3.3), so every subnet is evaluated, searched and exported with statistics measured on a
few training batches with exactly its own layers active.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nas.errors import DatasetError

logger = logging.getLogger(__name__)


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of `model` (elastic ones included: they subclass BatchNorm2d)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor], *, num_batches: int) -> None:
    """Reset the running statistics of every BN layer and recompute them on `num_batches` batches.

    The statistics are the exact average over the batches seen (momentum None, cumulative
    average), computed in train mode without gradients. Works on a supernet with an arch active
    (only the active slices are re-estimated; others stay reset) and on an extracted subnet.
    The model's train/eval mode and the layers' momentum are restored afterwards.

    Args:
        model: the network; called as `model(batch)`.
        batches: input tensors already at the subnet's resolution and on the model's device.
        num_batches: how many batches to use; 0 or less leaves the statistics untouched.

    Raises:
        DatasetError: when `batches` yields no batch at all.
    """
    if num_batches <= 0:
        return
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise DatasetError(
            "BN recalibration: expected at least one training batch, got none; "
            "use a dataset with a non-empty training split"
        )
    layers = batch_norms(model)
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: the exact mean over the batches
    model.train()
    try:
        seen = 0
        batch: Tensor | None = first
        while batch is not None and seen < num_batches:
            model(batch)
            seen += 1
            batch = next(iterator, None) if seen < num_batches else None
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        model.train(was_training)
    if seen < num_batches:
        logger.info("BN recalibration used %d of %d requested batches", seen, num_batches)
