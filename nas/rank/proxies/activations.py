"""Proxies of how a network at initialisation separates the images of a batch.

`jacov` and `naswot` are from Mellor et al., "Neural architecture search without training"
(v1, 2020, and ICML 2021). Both run in train mode (BN on batch statistics) as the reference code
does, and average over the batches given.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from nas.errors import NasError
from nas.rank.proxies.base import ProxyInput, batches_on, logits, register_proxy, working_copy

# The reference's regulariser of the Jacobian-correlation eigenvalues.
_JACOV_EPS = 1e-5
_RELUS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)


@register_proxy("jacov")
def jacov(subnet: ProxyInput) -> float:
    """Jacobian covariance (Mellor et al. v1): -sum(log(v + k) + 1 / (v + k)), higher is better.

    v are the eigenvalues of the correlation matrix of the per-image input gradients of the
    summed outputs, k = 1e-5: images whose gradients are less correlated score higher. A network
    whose output ignores an image (a constant Jacobian row) scores -inf.
    """
    model = working_copy(subnet, train=True)
    values = []
    for images, _ in batches_on(subnet):
        inputs = images.clone().requires_grad_(True)
        with torch.enable_grad():
            # the gradient of the summed outputs (a scalar: torch's check of explicit
            # grad_outputs imports sympy, a one-off second)
            (gradient,) = torch.autograd.grad(logits(model(inputs)).sum(), inputs,
                                              allow_unused=True)
        if gradient is None:  # e.g. an NB201 cell whose edges to the output are all `none`
            return -math.inf
        values.append(_jacobian_score(gradient.reshape(len(images), -1).double().cpu().numpy()))
    return float(np.mean(values))


def _jacobian_score(jacobian: np.ndarray) -> float:
    if len(jacobian) < 2 or np.any(jacobian.std(axis=1) == 0):
        return -math.inf
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobian))
    shifted = eigenvalues + _JACOV_EPS
    return float(-np.sum(np.log(np.maximum(shifted, 1e-300)) + 1.0 / shifted))


@register_proxy("naswot")
def naswot(subnet: ProxyInput) -> float:
    """NASWOT (Mellor et al., ICML 2021): log det K_H, higher is better.

    K_H[i, j] counts the ReLU units on which images i and j have the same binary code (input
    > 0), over every call of an `nn.ReLU`/`ReLU6`/`LeakyReLU` module in the forward pass; images
    that the network keeps apart give a larger determinant. A singular K_H gives -inf.

    Raises:
        NasError: when the model has no ReLU module to observe.
    """
    model = working_copy(subnet, train=True)
    relus: list[nn.Module] = [m for m in model.modules() if isinstance(m, _RELUS)]
    if not relus:
        raise NasError(
            "proxy 'naswot': expected nn.ReLU modules in the subnet, got none (functional "
            "activations are invisible to it); use another proxy for this space"
        )
    values = [
        float(torch.linalg.slogdet(_code_kernel(model, relus, images))[1])
        for images, _ in batches_on(subnet)
    ]
    return float(np.mean(values))


def _code_kernel(model: nn.Module, relus: list[nn.Module], images: Tensor) -> Tensor:
    """K_H of one batch: per pair of images, the number of ReLU inputs with the same sign."""
    kernel = torch.zeros((len(images), len(images)), dtype=torch.float64)

    def record(_: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        # with codes s = +-1, s s^T = agreements - disagreements = 2 * agreements - units
        signs = (inputs[0].reshape(len(kernel), -1) > 0).float() * 2 - 1
        kernel.add_(((signs @ signs.T + signs.shape[1]) / 2).double().cpu())

    handles = [relu.register_forward_pre_hook(record) for relu in relus]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return kernel
