"""What one search step does, per DARTS-family method: `StepRule` and its implementations.

Every rule sees one batch for the weights (first half of the training split) and one for the
architecture (second half) per step; `arch=False` during `arch_warmup_epochs`.

* `AlternatingRule` (darts, darts-2nd, pc-darts, gdas, fbnet, proxyless): an architecture step
  (first or second order, with the method's objective), then a weight step.
* `SelfDistillationRule` (sd-darts; Zhu et al., "Improving Differentiable Architecture Search
  via Self-Distillation", 2023): as first-order DARTS, but the weight step also distils from a
  voting teacher, the mean softmax output of the supernet's own last `sd_teachers` iterates on
  the same batch, `loss = CE + sd_weight * T^2 * KL(teacher || student)` at temperature T.
* `RelaxedRule` (rarts; Xue, Qi & Xin, "RARTS: An Efficient First-Order Relaxed Architecture
  Search Method", 2022): single-level, relaxed by an auxiliary network `y` (a copy of the
  weights) trained on the architecture half. Gauss-Seidel: `w` on `L_train(w) + beta/2 ||w -
  y||^2`, then `y` on `L_val(y) + beta/2 ||y - w||^2`, then the alphas on `L_train(w, alpha) +
  L_val(y, alpha)` at the new `w` and `y`: first-order only, no mixed second derivatives.
* `AccumulatedRule` (rome; Wang et al., "ROME: Robustifying Memory-Efficient NAS via Topology
  Disentanglement and Gradient Accumulation", 2023): the supernet samples in mode "rome"
  (topology by Gumbel-top-2, one op per kept edge); the gradients of `rome_samples` sampled
  subnets are averaged before each architecture step and each weight step.

Rules keep their own state (teachers, the auxiliary network) in `state_dict` for exact resume.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nas.supernet.differentiable import DifferentiableSupernet
from nas.train.bilevel_config import BilevelConfig
from nas.train.darts_steps import (
    Objective,
    accuracy,
    arch_step_first_order,
    arch_step_second_order,
    weight_step,
)

Batch = tuple[torch.Tensor, torch.Tensor]


class StepRule(abc.ABC):
    """One method's step. Lifecycle: built with the trainer's network and optimizers; `set_lr`
    at every epoch start; `step` per batch pair; `state_dict`/`load_state_dict` with every
    checkpoint."""

    def __init__(self, net: DifferentiableSupernet, w_opt: torch.optim.Optimizer,
                 a_opt: torch.optim.Optimizer, config: BilevelConfig) -> None:
        self.net, self.w_opt, self.a_opt, self.config = net, w_opt, a_opt, config

    @abc.abstractmethod
    def step(self, w_batch: Batch, a_batch: Batch, *, arch: bool, lr: float,
             objective: Objective) -> tuple[float, float, dict[str, float]]:
        """Train on the batches; (weight loss, weight-batch accuracy, more metrics)."""

    def set_lr(self, lr: float) -> None:  # noqa: B027 (optional hook)
        """The weights' learning rate changed (rules with more weight optimizers follow)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Continue from `state_dict()`'s output."""


class AlternatingRule(StepRule):
    """DARTS' alternation: architecture step, then weight step."""

    def arch_step(self, w_batch: Batch, a_batch: Batch, lr: float, objective: Objective) -> float:
        if self.config.method == "darts-2nd":
            return arch_step_second_order(self.net, self.a_opt, self.w_opt, w_batch, a_batch,
                                          objective, lr=lr)
        return arch_step_first_order(self.net, self.a_opt, *a_batch, objective)

    def step(self, w_batch: Batch, a_batch: Batch, *, arch: bool, lr: float,
             objective: Objective) -> tuple[float, float, dict[str, float]]:
        arch_loss = self.arch_step(w_batch, a_batch, lr, objective) if arch else math.nan
        loss, acc = weight_step(self.net, self.w_opt, *w_batch, grad_clip=self.config.grad_clip)
        return loss, acc, {"arch_loss": arch_loss}


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in net.state_dict().items()}


class SelfDistillationRule(AlternatingRule):
    """SD-DARTS: first-order DARTS whose weight step distils from a voting teacher."""

    def __init__(self, net: DifferentiableSupernet, w_opt: torch.optim.Optimizer,
                 a_opt: torch.optim.Optimizer, config: BilevelConfig) -> None:
        super().__init__(net, w_opt, a_opt, config)
        self.teachers: list[dict[str, torch.Tensor]] = []  # oldest first

    def vote(self, images: torch.Tensor) -> torch.Tensor | None:
        """The teachers' mean softmax output at the distillation temperature (None: no
        iterate yet). Teachers run in training mode like the student, on their own copies of
        the batch-norm buffers."""
        if not self.teachers:
            return None
        temperature = self.config.sd_temperature
        with torch.no_grad():
            probs = [F.softmax(functional_call(self.net, teacher, (images,)) / temperature, -1)
                     for teacher in self.teachers]
        return torch.stack(probs).mean(dim=0)

    def step(self, w_batch: Batch, a_batch: Batch, *, arch: bool, lr: float,
             objective: Objective) -> tuple[float, float, dict[str, float]]:
        arch_loss = self.arch_step(w_batch, a_batch, lr, objective) if arch else math.nan
        images, labels = w_batch
        teacher = self.vote(images)
        weights = self.net.weight_parameters()
        logits = self.net(images)
        ce = F.cross_entropy(logits, labels)
        distill = torch.zeros(())
        if teacher is not None:
            t = self.config.sd_temperature
            student = F.log_softmax(logits / t, dim=-1)
            distill = F.kl_div(student, teacher, reduction="batchmean") * t * t
        loss = ce + self.config.sd_weight * distill
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=weights)  # type: ignore[no-untyped-call]
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(weights, self.config.grad_clip)
        self.w_opt.step()
        self.teachers = [*self.teachers, _snapshot(self.net)][-self.config.sd_teachers:]
        return float(ce.detach()), accuracy(logits, labels), {
            "arch_loss": arch_loss, "distill": float(distill.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"teachers": self.teachers}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.teachers = [dict(teacher) for teacher in state["teachers"]]


class RelaxedRule(StepRule):
    """RARTS: the main network `w`, the auxiliary network `y`, Gauss-Seidel updates."""

    def __init__(self, net: DifferentiableSupernet, w_opt: torch.optim.Optimizer,
                 a_opt: torch.optim.Optimizer, config: BilevelConfig) -> None:
        super().__init__(net, w_opt, a_opt, config)
        weights = {id(p) for p in net.weight_parameters()}
        # y starts as w; batch-norm buffers of its own (the same modules run with y's values)
        self.aux = {name: nn.Parameter(p.detach().clone())
                    for name, p in net.named_parameters() if id(p) in weights}
        self.aux_buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
        group = w_opt.param_groups[0]
        self.y_opt = torch.optim.SGD(list(self.aux.values()), lr=float(group["lr"]),
                                     momentum=float(group["momentum"]),
                                     weight_decay=float(group["weight_decay"]))

    def _aux_forward(self, images: torch.Tensor) -> torch.Tensor:
        state: dict[str, torch.Tensor] = {**self.aux, **self.aux_buffers}
        logits: torch.Tensor = functional_call(self.net, state, (images,))
        return logits

    def _descend(self, loss: torch.Tensor, params: list[nn.Parameter],
                 anchor: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        """One step on `loss + beta/2 ||params - anchor||^2` (the coupling's gradient added
        directly), gradients clipped as the weights' are."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=params)  # type: ignore[no-untyped-call]
        beta = self.config.rarts_coupling
        with torch.no_grad():
            for param, other in zip(params, anchor, strict=True):
                assert param.grad is not None
                param.grad.add_(param - other, alpha=beta)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()

    def step(self, w_batch: Batch, a_batch: Batch, *, arch: bool, lr: float,
             objective: Objective) -> tuple[float, float, dict[str, float]]:
        weights = self.net.weight_parameters()
        aux = list(self.aux.values())
        logits = self.net(w_batch[0])
        loss = F.cross_entropy(logits, w_batch[1])
        self._descend(loss, weights, [y.detach() for y in aux], self.w_opt)
        aux_loss = F.cross_entropy(self._aux_forward(a_batch[0]), a_batch[1])
        self._descend(aux_loss, aux, [w.detach() for w in weights], self.y_opt)
        arch_loss = math.nan
        if arch:
            params = self.net.arch_parameters()
            total = (F.cross_entropy(self.net(w_batch[0]), w_batch[1])
                     + objective(self._aux_forward(a_batch[0]), a_batch[1]))
            grads = torch.autograd.grad(total, params)
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad.detach().clone()
            self.a_opt.step()
            arch_loss = float(total.detach())
        with torch.no_grad():
            gap = float(sum(((w - y) ** 2).sum() for w, y in zip(weights, aux, strict=True)))
        return float(loss.detach()), accuracy(logits, w_batch[1]), {
            "arch_loss": arch_loss, "aux_loss": float(aux_loss.detach()), "coupling": gap}

    def set_lr(self, lr: float) -> None:
        for group in self.y_opt.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {"aux": {name: p.detach() for name, p in self.aux.items()},
                "aux_buffers": self.aux_buffers, "y_opt": self.y_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for name, value in state["aux"].items():
                self.aux[name].copy_(value)
            for name, value in state["aux_buffers"].items():
                self.aux_buffers[name].copy_(value)
        self.y_opt.load_state_dict(state["y_opt"])


class AccumulatedRule(StepRule):
    """ROME: each step averages the gradients of `rome_samples` sampled subnets."""

    def _accumulate(self, batch: Batch, params: list[nn.Parameter],
                    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    ) -> tuple[float, float]:
        samples = self.config.rome_samples
        total = correct = 0.0
        for param in params:
            param.grad = None
        for _ in range(samples):
            logits = self.net(batch[0])
            loss = loss_of(logits, batch[1])
            (loss / samples).backward(inputs=params)  # type: ignore[no-untyped-call]
            total += float(loss.detach()) / samples
            correct += accuracy(logits, batch[1]) / samples
        return total, correct

    def step(self, w_batch: Batch, a_batch: Batch, *, arch: bool, lr: float,
             objective: Objective) -> tuple[float, float, dict[str, float]]:
        arch_loss = math.nan
        if arch:
            arch_loss, _ = self._accumulate(a_batch, self.net.arch_parameters(), objective)
            self.a_opt.step()
        weights = self.net.weight_parameters()
        loss, acc = self._accumulate(w_batch, weights, F.cross_entropy)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(weights, self.config.grad_clip)
        self.w_opt.step()
        return loss, acc, {"arch_loss": arch_loss}


def make_rule(net: DifferentiableSupernet, w_opt: torch.optim.Optimizer,
              a_opt: torch.optim.Optimizer, config: BilevelConfig) -> StepRule:
    """The rule of `config.method`."""
    rules: dict[str, type[StepRule]] = {
        "sd-darts": SelfDistillationRule, "rarts": RelaxedRule, "rome": AccumulatedRule}
    return rules.get(config.method, AlternatingRule)(net, w_opt, a_opt, config)


__all__ = ["AccumulatedRule", "AlternatingRule", "RelaxedRule", "SelfDistillationRule",
           "StepRule", "make_rule"]
