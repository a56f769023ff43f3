"""Gradient-based proxies: synflow, snip, grasp (pruning-at-initialisation saliencies, summed).

Each sums a per-weight saliency over the weights of conv and linear layers (BN and biases left
out, as in Abdelfattah et al., "Zero-cost proxies for lightweight NAS", ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nas.errors import NasError
from nas.rank.proxies.base import (
    BATCH_NORMS,
    ProxyInput,
    batches_on,
    logits,
    register_proxy,
    scored_weights,
    working_copy,
)


@register_proxy("synflow")
def synflow(subnet: ProxyInput) -> float:
    """Synaptic flow (Tanaka et al., NeurIPS 2020): sum |theta * dR/dtheta|, higher is better.

    R is the sum of the outputs of the network with every parameter replaced by its absolute
    value, fed an all-ones input, with BatchNorm bypassed (as the reference's `bn=False`). Runs
    in float64 so that the product over depth does not overflow; data-free (only the shape of
    the first batch is used).
    """
    model = working_copy(subnet, train=False, dtype=torch.float64)
    _bypass_batchnorm(model)
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point():
                tensor.abs_()
    shape = batches_on(subnet)[0][0].shape[1:]
    ones = torch.ones((1, *shape), dtype=torch.float64, device=subnet.device)
    with torch.enable_grad():
        logits(model(ones)).sum().backward()  # type: ignore[no-untyped-call]
    return _saliency(model, lambda w, g: (w * g).abs())


@register_proxy("snip")
def snip(subnet: ProxyInput) -> float:
    """SNIP connection sensitivity (Lee et al., ICLR 2019): sum |g * theta|, higher is better.

    g is the gradient of the loss (mean over the batches) in train mode (BN batch statistics).
    """
    model = working_copy(subnet, train=True)
    batches = batches_on(subnet)
    with torch.enable_grad():
        for images, labels in batches:
            loss = subnet.loss(logits(model(images)), labels) / len(batches)
            loss.backward()  # type: ignore[no-untyped-call]
    return _saliency(model, lambda w, g: (w * g).abs())


@register_proxy("grasp")
def grasp(subnet: ProxyInput) -> float:
    """GraSP gradient-signal preservation (Wang et al., ICLR 2020): sum -theta * Hg.

    H is the Hessian and g the gradient of the loss (train mode, mean over the batches). The
    sign is the zero-cost reference's, under which higher predicts better. One forward pass
    per batch (the reference makes two): the graph of each batch's gradient is kept until the
    Hessian-vector product, so memory grows with the number of batches.
    """
    model = working_copy(subnet, train=True)
    batches = batches_on(subnet)
    weights = scored_weights(model)
    with torch.enable_grad():
        parts = []
        for images, labels in batches:
            loss = subnet.loss(logits(model(images)), labels) / len(batches)
            grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
            parts.append(
                [
                    torch.zeros_like(w) if g is None else g
                    for w, g in zip(weights, grads, strict=True)
                ]
            )
        gradient = [
            torch.stack(per_weight).sum(0).detach() for per_weight in zip(*parts, strict=True)
        ]
        # d/dtheta (stop_grad(g) . grad L(theta)) = H g, left in .grad by backward
        product = sum((g * p).sum() for part in parts for g, p in zip(gradient, part, strict=True))
        if isinstance(product, Tensor) and product.requires_grad:
            _second_backward(product)
    return _saliency(model, lambda w, hg: -w * hg)


def _second_backward(product: Tensor) -> None:
    try:
        product.backward()  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        # torch lacks some second derivatives, e.g. of hardsigmoid (MobileNetV3's squeeze-excite)
        if "derivative for" not in str(exc):
            raise
        raise NasError(
            f"proxy 'grasp': expected a network torch can differentiate twice, got one with "
            f"an operation it cannot ({exc}); use another proxy for this space"
        ) from None


def _saliency(model: nn.Module, per_weight: Callable[[Tensor, Tensor], Tensor]) -> float:
    """Sum of `per_weight(theta, theta.grad)` over conv and linear weights, in float64."""
    total = 0.0
    for weight in scored_weights(model):
        if weight.grad is not None:
            total += float(per_weight(weight.detach(), weight.grad).sum(dtype=torch.float64))
    return total


def _bypass_batchnorm(model: nn.Module) -> None:
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, BATCH_NORMS):
                setattr(module, name, nn.Identity())
