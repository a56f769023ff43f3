"""Several edges' convolutions and batch norms run as one, with each edge's modules unchanged.

Edges that read the same node apply `conv(relu(x))` with different weights to the same input:
concatenating their weights along the output channels gives one convolution whose output
channels are the edges' outputs side by side. Batch norm is per channel, so one batch norm over
the concatenated channels, with the edges' affine weights and statistics concatenated, computes
every edge's batch norm. The running statistics are then written back to each edge's own
`BatchNorm2d`, with that module's own update factor (its momentum, or with momentum None the
cumulative average over its own `num_batches_tracked`, as BN recalibration uses).

A per-channel `scale` multiplies the batch norms' affine weights and biases: `scale * bn(x)`
in the same pass, which is how a DARTS-style mixed forward weighs each edge's convolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _update_factor(bn: nn.BatchNorm2d) -> float:
    """What `bn.forward` does before normalising in training mode: count the batch, and return
    the weight of this batch in the running statistics."""
    assert bn.num_batches_tracked is not None
    bn.num_batches_tracked.add_(1)
    if bn.momentum is None:
        return 1.0 / float(bn.num_batches_tracked)
    return float(bn.momentum)


def batch_norm_group(
    x: Tensor, bns: Sequence[nn.BatchNorm2d], scale: Tensor | None = None
) -> Tensor:
    """`cat([bn(part) for bn, part in zip(bns, x.split(...))], dim=1) * scale`, in one pass.

    Args:
        x: `(batch, sum of the bns' channels, H, W)`, the edges' channels side by side.
        bns: affine batch norms tracking running statistics, all with the same `eps`.
        scale: `(sum of the bns' channels,)` factors of the outputs (None: 1).
    """
    if len(bns) == 1 and scale is None:
        out: Tensor = bns[0](x)
        return out
    assert all(bn.affine and bn.track_running_stats and bn.eps == bns[0].eps for bn in bns)
    weight = torch.cat([bn.weight for bn in bns])
    bias = torch.cat([bn.bias for bn in bns])
    if scale is not None:
        weight, bias = weight * scale, bias * scale
    stats = [(bn.running_mean, bn.running_var) for bn in bns]
    if not bns[0].training:
        means = torch.cat([m for m, _ in stats if m is not None])
        variances = torch.cat([v for _, v in stats if v is not None])
        return F.batch_norm(x, means, variances, weight, bias, False, 0.0, bns[0].eps)
    factors = [_update_factor(bn) for bn in bns]
    # momentum 1 makes batch_norm store this batch's mean and unbiased variance in the buffers
    batch_mean, batch_var = torch.zeros_like(weight), torch.ones_like(weight)
    out = F.batch_norm(x, batch_mean, batch_var, weight, bias, True, 1.0, bns[0].eps)
    with torch.no_grad():
        sizes = [bn.num_features for bn in bns]
        parts = zip(stats, factors, torch.split(batch_mean, sizes), torch.split(batch_var, sizes),
                    strict=True)
        for (mean, var), factor, new_mean, new_var in parts:
            assert mean is not None and var is not None
            mean.lerp_(new_mean, factor)
            var.lerp_(new_var, factor)
    return out


def conv_bn_group(
    x: Tensor, layers: Sequence[nn.Sequential], scale: Tensor | None = None
) -> list[Tensor]:
    """The outputs of `layer[2](layer[1](x))` (conv, BN of ReLU-conv-BN blocks) for every layer,
    as one convolution and one batch norm; `x` is already ReLU'd. `scale`: per output channel
    of all layers, see `batch_norm_group`."""
    convs = [cast(nn.Conv2d, layer[1]) for layer in layers]
    weight = convs[0].weight if len(convs) == 1 else torch.cat([c.weight for c in convs])
    y = F.conv2d(x, weight, None, 1, convs[0].padding)
    y = batch_norm_group(y, [cast(nn.BatchNorm2d, layer[2]) for layer in layers], scale)
    return list(torch.split(y, convs[0].out_channels, dim=1))
