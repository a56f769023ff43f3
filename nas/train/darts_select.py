"""DARTS-PT's perturbation-based selection (Wang et al., "Rethinking Architecture Selection in
Differentiable NAS", 2021), without the fine-tuning between decisions.

Instead of trusting alpha magnitudes, each choice is judged by how much the supernet's
validation accuracy drops when the candidate is removed:

1. operations: edge by edge, every candidate op is masked out in turn; the op whose removal
   hurts most is kept and the edge is discretised to it. Candidates are every op but `none`
   where a derived cell never holds `none` (DARTS), every op where it is an operation like the
   others (NAS-Bench-201, as the reference code does on that benchmark);
2. topology, where a derived node keeps a fixed number of inputs (DARTS: 2): node by node,
   each incoming (now discrete) edge is removed in turn; those whose removal hurts most are
   kept.

The supernet runs in mode `"fixed"` with the current softmax weights as the starting mix.
Batch-norm statistics are batch statistics (training mode) and are restored afterwards.
"""

from __future__ import annotations

from typing import Any

import torch

from nas.data import BatchLoader, DatasetSplits
from nas.supernet.differentiable import DifferentiableSupernet

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _accuracy(net: DifferentiableSupernet, batches: Batches) -> float:
    correct = total = 0
    with torch.no_grad():
        for images, labels in batches:
            correct += int((net(images).argmax(1) == labels).sum())
            total += len(labels)
    return correct / max(1, total)


def _select_ops(net: DifferentiableSupernet, weights: dict[str, torch.Tensor],
                batches: Batches) -> None:
    first = 0 if net.inputs_per_node is None else 1  # column 0 is `none`
    for cell in net.cell_types:
        for row in range(weights[cell].shape[0]):
            scores, mix = {}, weights[cell][row].tolist()
            for op in range(first, len(net.op_names)):
                weights[cell][row, op] = 0.0
                scores[op] = _accuracy(net, batches)
                weights[cell][row, op] = mix[op]
            # largest drop when removed; on a tie the larger weight (removing `none` changes
            # nothing, so a tie must not fall to it by its column)
            best = min(scores, key=lambda o: (scores[o], -mix[o], o))
            weights[cell][row] = 0.0
            weights[cell][row, best] = 1.0


def _select_edges(net: DifferentiableSupernet, weights: dict[str, torch.Tensor],
                  batches: Batches, keep: int) -> None:
    for cell in net.cell_types:
        for rows in net.node_rows:
            scores = {}
            for row in rows:
                saved = weights[cell][row].clone()
                weights[cell][row] = 0.0
                scores[row] = _accuracy(net, batches)
                weights[cell][row] = saved
            kept = sorted(scores, key=lambda r: (scores[r], r))[:keep]
            for row in rows:
                if row not in kept:
                    weights[cell][row] = 0.0


def perturbation_arch(
    net: DifferentiableSupernet, splits: DatasetSplits, *, device: torch.device, batches: int,
    batch_size: int,
) -> dict[str, Any]:
    """The subnet chosen by DARTS-PT's perturbation on `batches` validation batches."""
    loader = BatchLoader.for_splits(splits, "val", batch_size=batch_size, device=device)
    data = [batch for _, batch in zip(range(batches), loader.epoch(0), strict=False)]
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    mode, fixed, training = net.mode, net.fixed_weights, net.training
    with torch.no_grad():
        weights = {cell: net.op_weights(cell).detach().clone() for cell in net.cell_types}
    net.fixed_weights, net.mode = weights, "fixed"
    net.train()
    try:
        _select_ops(net, weights, data)
        if net.inputs_per_node is not None:
            _select_edges(net, weights, data, net.inputs_per_node)
        return net.arch_from_weights({cell: w.cpu() for cell, w in weights.items()})
    finally:
        net.mode, net.fixed_weights = mode, fixed
        net.train(training)
        with torch.no_grad():
            for name, buffer in net.named_buffers():
                buffer.copy_(buffers[name])
