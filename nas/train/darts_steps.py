"""One weight step and one architecture step of DARTS (first and second order).

Gradients are taken only where they are used: the architecture step asks autograd for the
alphas' gradients alone (the convolutions' weight gradients, the costliest part of a backward
pass on CPU, are skipped), and the weight step for the weights alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.supernet.differentiable import DifferentiableSupernet

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # logits, labels -> loss


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == labels).float().mean())


def weight_step(
    net: DifferentiableSupernet, optimizer: torch.optim.Optimizer, images: torch.Tensor,
    labels: torch.Tensor, *, grad_clip: float | None,
) -> tuple[float, float]:
    """SGD step on the network weights; returns (loss, accuracy)."""
    weights = net.weight_parameters()
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=weights)  # type: ignore[no-untyped-call]
    if grad_clip:
        nn.utils.clip_grad_norm_(weights, grad_clip)
    optimizer.step()
    return float(loss.detach()), accuracy(logits, labels)


def _set_grads(
    params: list[nn.Parameter], grads: tuple[torch.Tensor, ...] | list[torch.Tensor]
) -> None:
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad.detach().clone()


def arch_step_first_order(
    net: DifferentiableSupernet, optimizer: torch.optim.Optimizer, images: torch.Tensor,
    labels: torch.Tensor, objective: Objective,
) -> float:
    """First-order DARTS: the alphas follow the validation loss at the current weights."""
    arch = net.arch_parameters()
    loss = objective(net(images), labels)
    _set_grads(arch, torch.autograd.grad(loss, arch))
    optimizer.step()
    return float(loss.detach())


def _virtual_step(
    weights: list[nn.Parameter], grads: tuple[torch.Tensor, ...], w_opt: torch.optim.Optimizer,
    lr: float,
) -> None:
    """w <- w - lr * (momentum * buffer + grad + weight_decay * w), as the next SGD step would."""
    group = w_opt.param_groups[0]
    momentum, decay = float(group["momentum"]), float(group["weight_decay"])
    with torch.no_grad():
        for param, grad in zip(weights, grads, strict=True):
            buffer = w_opt.state.get(param, {}).get("momentum_buffer")
            step = grad + decay * param
            if buffer is not None:
                step = step + momentum * buffer
            param.sub_(lr * step)


def arch_step_second_order(
    net: DifferentiableSupernet, a_opt: torch.optim.Optimizer, w_opt: torch.optim.Optimizer,
    train_batch: tuple[torch.Tensor, torch.Tensor], val_batch: tuple[torch.Tensor, torch.Tensor],
    objective: Objective, *, lr: float,
) -> float:
    """Second-order DARTS with the finite-difference Hessian-vector product.

    grad_alpha L_val(w', alpha) - lr * (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / 2 eps,
    where w' is one virtual SGD step from w and w+- = w +- eps * grad_w' L_val(w', alpha).
    The weights are restored exactly afterwards.
    """
    arch, weights = net.arch_parameters(), net.weight_parameters()
    backup = [w.detach().clone() for w in weights]
    train_loss = F.cross_entropy(net(train_batch[0]), train_batch[1])
    _virtual_step(weights, torch.autograd.grad(train_loss, weights), w_opt, lr)
    val_loss = objective(net(val_batch[0]), val_batch[1])
    grads = torch.autograd.grad(val_loss, arch + weights)
    d_alpha, d_weights = grads[: len(arch)], grads[len(arch):]
    eps = 0.01 / torch.cat([g.reshape(-1) for g in d_weights]).norm().clamp_min(1e-12)

    def shifted_grad(sign: float) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            for param, base, direction in zip(weights, backup, d_weights, strict=True):
                param.copy_(base + sign * eps * direction)
        loss = F.cross_entropy(net(train_batch[0]), train_batch[1])
        return torch.autograd.grad(loss, arch)

    plus, minus = shifted_grad(1.0), shifted_grad(-1.0)
    with torch.no_grad():
        for param, base in zip(weights, backup, strict=True):
            param.copy_(base)
    hessian = [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]
    _set_grads(arch, [g - lr * h for g, h in zip(d_alpha, hessian, strict=True)])
    a_opt.step()
    return float(val_loss.detach())
