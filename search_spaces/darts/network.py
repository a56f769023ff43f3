"""The DARTS evaluation network (`NetworkCIFAR`): a genotype's cells stacked `layers` times.

Stem 3x3 conv to `3 * init_channels`, cells with reductions at 1/3 and 2/3 of the depth,
global average pooling and a linear classifier; optionally the auxiliary head after the second
reduction and drop-path on every non-identity edge during training.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.arch import Arch
from search_spaces.darts.counting import STEM_MULTIPLIER, CellPlan, cell_plans
from search_spaces.darts.ops import FactorizedReduce, Identity, ReLUConvBN, build_op, drop_path


class EvalCell(nn.Module):
    """One cell of a genotype: 4 nodes, each the sum of two operations on earlier states."""

    def __init__(self, genotype: Arch, plan: CellPlan) -> None:
        super().__init__()
        c = plan.channels
        self.reduction = plan.reduction
        if plan.reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(plan.c_prev_prev, c)
        else:
            self.preprocess0 = ReLUConvBN(plan.c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(plan.c_prev, c, 1, 1, 0)
        cell = "reduce" if plan.reduction else "normal"
        self.inputs: list[int] = [int(source) for _, source in genotype[cell]]
        self.concat: list[int] = [int(i) for i in genotype[f"{cell}_concat"]]
        self.ops = nn.ModuleList(
            build_op(op, c, 2 if plan.reduction and source < 2 else 1)
            for op, source in genotype[cell]
        )
        # drop-path skips identities, as in DARTS
        self.droppable: list[bool] = [not isinstance(op, Identity) for op in self.ops]
        self.multiplier = len(self.concat)
        self.drop_generator: torch.Generator | None = None
        self.drop_prob = 0.0

    @torch.jit.unused
    def _drop(self, x):  # type: ignore[no-untyped-def]
        # unannotated on purpose: TorchScript cannot read postponed annotations of an unused
        # method; scripted (exported) networks never train, so this never runs there
        return drop_path(x, self.drop_prob, self.drop_generator)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        first = states[0]
        for index, op in enumerate(self.ops):  # edges come in pairs: one node per pair
            h = op(states[self.inputs[index]])
            if self.training and drop_prob > 0.0 and self.droppable[index]:
                self.drop_prob = drop_prob
                h = self._drop(h)
            if index % 2 == 0:
                first = h
            else:
                states.append(first + h)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Sequential):
    """The DARTS auxiliary classifier for 8x8 feature maps (CIFAR at 32 px)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class NetworkCIFAR(nn.Module):
    """The evaluation network of a genotype.

    `forward(x)` returns logits; `forward_with_aux(x)` also returns the auxiliary logits when
    the head exists and the network is training. `drop_path_prob` may be changed between
    epochs (DARTS raises it linearly).
    """

    def __init__(
        self,
        genotype: Arch,
        *,
        init_channels: int,
        layers: int,
        num_classes: int,
        in_channels: int = 3,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        self.genotype: dict[str, Any] = dict(genotype)
        self.drop_path_prob = drop_path_prob
        stem_c = STEM_MULTIPLIER * init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_c, 3, padding=1, bias=False), nn.BatchNorm2d(stem_c)
        )
        self.cells = nn.ModuleList()
        self.aux_index = -1
        c_aux = c_last = stem_c
        plans = list(cell_plans(init_channels, layers, image_size))
        second_reduction = max(p.index for p in plans if p.reduction)
        for plan in plans:
            cell = EvalCell(genotype, plan)
            self.cells.append(cell)
            c_last = cell.multiplier * plan.channels
            if plan.index == second_reduction:
                c_aux, self.aux_index = c_last, plan.index
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def set_drop_path_generator(self, generator: torch.Generator | None) -> None:
        """The randomness of drop-path (trainers pass a seeded generator)."""
        for cell in self.cells:
            cell.drop_generator = generator  # type: ignore[assignment]

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux: torch.Tensor | None = None
        s0 = s1 = self.stem(x)
        for index, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if index == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]


def count_parameters(model: nn.Module, *, exclude_auxiliary: bool = True) -> int:
    """Trainable parameters, without the auxiliary head (as DARTS reports them)."""
    return sum(
        p.numel() for name, p in model.named_parameters()
        if not (exclude_auxiliary and name.startswith("auxiliary_head"))
    )
