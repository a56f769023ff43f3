"""One training step over several subnets: the sandwich rule with in-place distillation.

BigNAS / AttentiveNAS: every step trains the largest subnet on the labels, then the smallest
and N random subnets, each also distilling from the largest subnet's (detached) predictions on
the same images. Gradients of all subnets accumulate before a single optimizer step, so the
shared weights move in a direction good for the whole size range. Each subnet's backward runs
right after its forward so only one subnet's activations are alive at a time.

Progressive shrinking uses the same step with a separate frozen teacher (see progressive.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.supernet import Supernet


@dataclass(frozen=True)
class StepSpec:
    """What one step trains: `(role, arch)` pairs, the first one first.

    Roles are "largest", "smallest", "random" (or a phase name); the loop reports loss and
    accuracy per role.
    """

    subnets: tuple[tuple[str, dict[str, Any]], ...]
    teacher: nn.Module | None = None  # frozen teacher; None: in-place from the first subnet
    distill: bool = True  # False: labels only (single-path training has no teacher subnet)


@dataclass
class StepResult:
    """Losses (summed over the step's subnets) and per-role statistics of one step."""

    loss: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    subnets: dict[str, int] = field(default_factory=dict)  # forward passes per role
    kd_loss: float = 0.0
    images: int = 0
    # per image, ||softmax - onehot|| of the first subnet: the norm of the loss gradient
    # with respect to its logits (importance sampling of data, nas/train/pada.py)
    sample_scores: torch.Tensor | None = None


@dataclass(frozen=True)
class StepOptions:
    """Per-run knobs of a step (from `TrainConfig`)."""

    label_smoothing: float = 0.0
    distill_weight: float = 1.0
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    scaler: Any = None  # torch.amp.GradScaler for fp16
    channels_last: bool = False
    sample_scores: bool = False  # per-image scores for a sampler that observes them (PA&DA)


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a distribution (the KD loss of OFA and BigNAS, temperature 1)."""
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def resize(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Images resized on their device (bilinear) to `resolution`; unchanged when it matches."""
    if resolution is None or images.shape[-1] == resolution:
        return images
    size = (resolution, resolution)
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


class _Resized:
    """Caches the batch at each resolution used in a step."""

    def __init__(self, images: torch.Tensor, channels_last: bool) -> None:
        self.images = images
        self.channels_last = channels_last
        self.cache: dict[int | None, torch.Tensor] = {}

    def at(self, resolution: int | None) -> torch.Tensor:
        if resolution not in self.cache:
            out = resize(self.images, resolution)
            if self.channels_last:
                out = out.contiguous(memory_format=torch.channels_last)
            self.cache[resolution] = out
        return self.cache[resolution]


def _teacher_probs(teacher: nn.Module, images: torch.Tensor, options: StepOptions) -> torch.Tensor:
    with torch.no_grad(), options.autocast():
        return F.softmax(teacher(images).float(), dim=1)


def train_step(
    model: nn.Module,
    net: Supernet,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: StepSpec,
    options: StepOptions,
) -> StepResult:
    """Forward + backward every subnet of `spec`; gradients accumulate (no optimizer step).

    Args:
        model: what is called (the supernet, or a wrapper of it). Under torchrun the
            caller averages the accumulated gradients over the ranks afterwards.
        net: the supernet itself (for `set_active`).
        images: float images at the dataset's size; resized per subnet resolution.
        labels: int64 class labels.
        spec: the subnets to train, first one first.
        options: loss weights and AMP settings.
    """
    result = StepResult(images=int(images.shape[0]))
    batch = _Resized(images, options.channels_last)
    targets: torch.Tensor | None = None  # in-place KD targets (from the first subnet)
    for index, (role, arch) in enumerate(spec.subnets):
        net.set_active(arch)
        inputs = batch.at(net.input_resolution(arch))
        with options.autocast():
            logits = model(inputs)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=options.label_smoothing)
        kd_targets = targets
        if spec.teacher is not None:
            kd_targets = _teacher_probs(spec.teacher, inputs, options)
        if kd_targets is not None and options.distill_weight > 0:
            kd = soft_cross_entropy(logits, kd_targets)
            loss = loss + options.distill_weight * kd
            result.kd_loss += float(kd.detach())
        scaled = options.scaler.scale(loss) if options.scaler is not None else loss
        scaled.backward()
        if index == 0 and options.sample_scores:
            result.sample_scores = _logit_gradient_norms(logits.detach(), labels)
        if index == 0 and spec.teacher is None and spec.distill:
            targets = F.softmax(logits.detach().float(), dim=1)
        _record(result, role, float(loss.detach()), logits.detach(), labels)
    return result


def _logit_gradient_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    probs = F.softmax(logits.float(), dim=1)
    norms: torch.Tensor = (probs - F.one_hot(labels, probs.shape[1]).float()).norm(dim=1)
    return norms


def _record(
    result: StepResult, role: str, loss: float, logits: torch.Tensor, labels: torch.Tensor
) -> None:
    result.loss += loss
    result.losses[role] = result.losses.get(role, 0.0) + loss
    correct = int((logits.argmax(dim=1) == labels).sum())
    result.correct[role] = result.correct.get(role, 0) + correct
    result.seen[role] = result.seen.get(role, 0) + int(labels.shape[0])
    result.subnets[role] = result.subnets.get(role, 0) + 1


def sandwich_subnets(
    largest: dict[str, Any], smallest: dict[str, Any], randoms: Sequence[dict[str, Any]]
) -> StepSpec:
    """The sandwich rule: largest (teacher, trained on labels), smallest, then random ones."""
    subnets = [("largest", largest), ("smallest", smallest)]
    subnets += [("random", arch) for arch in randoms]
    return StepSpec(tuple(subnets))
