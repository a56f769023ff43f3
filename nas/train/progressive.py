"""Phases of supernet training: what each step trains, and the optimizer of each phase.

`--method sandwich` is one phase with everything elastic. `--method ps` (progressive shrinking,
Once-for-All) trains the full network first, then phases that unlock elastic kernel, depth and
expand ratio in turn; each later phase distils from a frozen copy of the full network taken
when the first elastic phase starts, and a phase that shrinks channels first asks the supernet
to re-sort them by importance. Each phase gets its own optimizer and warmup + cosine schedule
(OFA runs each phase as a separate fine-tuning job).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nas.supernet import Supernet
from nas.train.config import PhaseConfig, TrainConfig
from nas.train.samplers import SubnetSampler
from nas.train.sandwich import StepSpec, sandwich_subnets


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of global step `step`: a resumed run redraws exactly the same subnets."""
    return np.random.default_rng([seed, 0x5EED, step])


def step_spec(
    phase: PhaseConfig,
    sampler: SubnetSampler,
    rng: np.random.Generator,
    *,
    num_random: int,
    teacher: nn.Module | None,
) -> StepSpec:
    """The subnets one step of `phase` trains.

    - spos (single-path one-shot, Guo et al. 2020): one uniformly sampled subnet, on the
      labels alone (`num_random` does not apply).
    - sandwich (`unlock == ("*",)`): largest, smallest and `num_random` random subnets.
    - PS, nothing unlocked: the largest subnet alone, on the labels.
    - PS, some keys unlocked: `max(1, num_random)` subnets of the unlocked sub-space,
      distilling from the frozen `teacher`.
    """
    if phase.name == "spos":
        return StepSpec((("random", sampler.sample(rng)),), distill=False)
    if "*" in phase.unlock:
        randoms = [sampler.sample(rng) for _ in range(num_random)]
        return sandwich_subnets(sampler.largest(), sampler.smallest(), randoms)
    if not phase.unlock:
        return StepSpec((("largest", sampler.largest()),))
    subnets = tuple(
        (phase.name, sampler.sample(rng, unlock=phase.unlock)) for _ in range(max(1, num_random))
    )
    return StepSpec(subnets, teacher=teacher)


def needs_teacher(phases: Sequence[PhaseConfig], index: int) -> bool:
    """PS phases after the full-network one distil from the frozen full network."""
    phase = phases[index]
    return bool(phase.unlock) and "*" not in phase.unlock


def make_teacher(net: Supernet, largest: dict[str, object]) -> Supernet:
    """A frozen copy of `net` running its largest subnet."""
    teacher = copy.deepcopy(net)
    teacher.set_active(largest)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    # train mode as OFA: batch statistics of the current images, robust to resolution changes
    return teacher.train()


def param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on conv/linear weights only: not on batch-norm weights or any bias."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for parameter in net.parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    net: nn.Module, cfg: TrainConfig, phase: PhaseConfig, *, steps: int, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD (momentum, Nesterov) with linear warmup then cosine decay to zero over `steps`."""
    lr = phase.lr if phase.lr is not None else cfg.lr
    optimizer = torch.optim.SGD(
        param_groups(net, cfg.weight_decay), lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov
    )
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), steps // 2)
    schedule = WarmupCosine(warmup, steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


class WarmupCosine:
    """lr factor: linear from 1/warmup to 1 over `warmup` steps, then cosine to 0 at `total`.

    A class rather than a lambda so the schedule is a plain, inspectable object.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = max(total, 1)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
