"""DARTS-PT's perturbation-based selection (Wang et al., "Rethinking Architecture Selection in
Differentiable NAS", 2021), without the fine-tuning between decisions.

Instead of trusting alpha magnitudes, each choice is judged by how much the supernet's
validation accuracy drops when the candidate is removed:

1. operations: edge by edge, every non-`none` op is masked out in turn; the op whose removal
   hurts most is kept and the edge is discretised to it;
2. topology: node by node, each incoming (now discrete) edge is removed in turn; the two whose
   removal hurts most are kept.

The supernet runs in mode `"fixed"` with the current softmax weights as the starting mix.
Batch-norm statistics are batch statistics (training mode) and are restored afterwards.
"""

from __future__ import annotations

from typing import Any

import torch

from nas.data import BatchLoader, DatasetSplits
from search_spaces.darts.genotypes import CONCAT, PRIMITIVES, STEPS
from search_spaces.darts.supernet import DartsSupernet, edge_index

CELLS = ("normal", "reduce")


def _accuracy(net: DartsSupernet, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    correct = total = 0
    with torch.no_grad():
        for images, labels in batches:
            correct += int((net(images).argmax(1) == labels).sum())
            total += len(labels)
    return correct / max(1, total)


def _select_ops(net: DartsSupernet, weights: dict[str, torch.Tensor],
                batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for cell in CELLS:
        for row in range(weights[cell].shape[0]):
            scores = {}
            for op in range(1, len(PRIMITIVES)):  # never keep `none`
                saved = weights[cell][row, op].item()
                weights[cell][row, op] = 0.0
                scores[op] = _accuracy(net, batches)
                weights[cell][row, op] = saved
            best = min(scores, key=lambda o: (scores[o], o))  # largest drop when removed
            weights[cell][row] = 0.0
            weights[cell][row, best] = 1.0


def _select_edges(net: DartsSupernet, weights: dict[str, torch.Tensor],
                  batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    genotype: dict[str, Any] = {}
    for cell in CELLS:
        edges: list[list[Any]] = []
        for node in range(STEPS):
            scores = {}
            for source in range(node + 2):
                row = edge_index(node, source)
                saved = weights[cell][row].clone()
                weights[cell][row] = 0.0
                scores[source] = _accuracy(net, batches)
                weights[cell][row] = saved
            keep = sorted(scores, key=lambda s: (scores[s], s))[:2]
            for source in keep:
                row = edge_index(node, source)
                edges.append([PRIMITIVES[int(weights[cell][row].argmax())], source])
            for source in range(node + 2):
                if source not in keep:
                    weights[cell][edge_index(node, source)] = 0.0
        genotype[cell], genotype[f"{cell}_concat"] = edges, list(CONCAT)
    return genotype


def perturbation_genotype(
    net: DartsSupernet, splits: DatasetSplits, *, device: torch.device, batches: int,
    batch_size: int,
) -> dict[str, Any]:
    """The genotype chosen by DARTS-PT's perturbation on `batches` validation batches."""
    loader = BatchLoader.for_splits(splits, "val", batch_size=batch_size, device=device)
    data = [batch for _, batch in zip(range(batches), loader.epoch(0), strict=False)]
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    mode, fixed = net.mode, net.fixed_weights
    with torch.no_grad():
        weights = {cell: net.op_weights(cell).detach().clone() for cell in CELLS}
    net.fixed_weights, net.mode = weights, "fixed"
    net.train()
    try:
        _select_ops(net, weights, data)
        return _select_edges(net, weights, data)
    finally:
        net.mode, net.fixed_weights = mode, fixed
        with torch.no_grad():
            for name, buffer in net.named_buffers():
                buffer.copy_(buffers[name])
