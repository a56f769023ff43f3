"""The proxy interface: what a proxy sees of a subnet, the registry, timing and working copies.

A proxy is a function `(ProxyInput) -> float` registered by name; a higher value predicts a
better subnet. It never touches the caller's model: every proxy works on a deep copy (float32 on
`device`, or float64 for synflow) whose train/eval mode is the one the proxy's paper uses, and it
sets no global torch state (no global seed, thread count or grad mode left changed). Dropout is
switched off in the copy even in train mode, so that a proxy is a deterministic function of the
weights and the batches; the reference networks (NAS-Bench-201) have none.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.errors import ConfigError
from nas.fast_pool import with_fast_pools
from nas.registry import Registry

Batch = tuple[Tensor, Tensor]
Loss = Callable[[Tensor, Tensor], Tensor]

# Layers whose weights the gradient proxies score, as the references do (no BN, no biases).
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@dataclass(frozen=True)
class ProxyInput:
    """One subnet as the proxies see it.

    Attributes:
        model: the subnet; left unchanged (proxies work on a copy).
        batches: one or a few `(images, labels)` batches of the user's data; proxies that use
            data average (or accumulate) over them.
        complexity: `space.complexity(arch)`, `{"params", "macs"}`, for the size proxies.
        device: where the copy runs (CPU by default).
        init_seed: when set, the copy's weights are re-drawn from a generator seeded with it
            (PyTorch's default initialisation), so scores do not depend on how and where the
            model was built; None keeps the model's own weights.
        loss: the training loss of the data proxies (snip, grasp).
    """

    model: nn.Module
    batches: Sequence[Batch] = ()
    complexity: Mapping[str, int] | None = None
    device: torch.device | str = "cpu"
    init_seed: int | None = None
    loss: Loss = field(default=F.cross_entropy)


ProxyFn = Callable[[ProxyInput], float]

PROXIES: Registry[ProxyFn] = Registry("proxy")
register_proxy = PROXIES.register


@dataclass(frozen=True)
class ProxyScore:
    """A proxy's value for one subnet and what it cost.

    Attributes:
        value: the score (higher predicts better).
        seconds: wall-clock time of the call.
        cpu_seconds: CPU time of this process during the call (all its threads): the cost that
            does not grow when other jobs share the machine.
    """

    value: float
    seconds: float
    cpu_seconds: float


def compute_proxies(names: Sequence[str], subnet: ProxyInput) -> dict[str, ProxyScore]:
    """Score one subnet with each named proxy, timing each call.

    Raises:
        NasError: an unknown proxy name (the message lists the registered ones).
    """
    proxies = {name: PROXIES.get(name) for name in names}
    scores = {}
    for name, proxy in proxies.items():
        start, cpu_start = time.perf_counter(), time.process_time()
        value = float(proxy(subnet))
        cpu = time.process_time() - cpu_start
        scores[name] = ProxyScore(value, time.perf_counter() - start, cpu)
    return scores


def working_copy(
    subnet: ProxyInput, *, train: bool, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """A deep copy of the subnet's model to run a proxy on: `dtype`, on the device, grads cleared.

    `train` sets the mode as the proxy's paper does (BN on batch statistics); dropout stays off.
    """
    # the copy is never exported: its 3x3 mean pools may take the CPU's fast path
    model = with_fast_pools(copy.deepcopy(subnet.model)).to(device="cpu", dtype=dtype)
    if subnet.init_seed is not None:
        seeded_init(model, subnet.init_seed)
    model = model.to(subnet.device)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
        parameter.grad = None
    model.train(train)
    for module in model.modules():
        if isinstance(module, _DROPOUTS):
            module.eval()
    return model


def seeded_init(model: nn.Module, seed: int) -> None:
    """Re-draw conv and linear weights as PyTorch's default initialisation does, from `seed`.

    BatchNorm layers are reset (unit scale, zero shift, fresh statistics); other parameters
    keep their values. The model must be on the CPU (the generator is a CPU generator).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, WEIGHTED):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1.0 / math.sqrt(max(1, module.weight[0].numel()))
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, BATCH_NORMS):
                module.reset_parameters()


def scored_weights(model: nn.Module) -> list[Tensor]:
    """The weights of the conv and linear layers, which the gradient proxies score."""
    return [m.weight for m in model.modules() if isinstance(m, WEIGHTED)]


def logits(output: Tensor | Sequence[Tensor]) -> Tensor:
    """The logits of a forward pass; a model returning a tuple puts them first (DARTS style)."""
    return output if isinstance(output, Tensor) else output[0]


def batches_on(subnet: ProxyInput, dtype: torch.dtype = torch.float32) -> list[Batch]:
    """The subnet's batches on its device; at least one is required."""
    if not subnet.batches:
        raise ConfigError("proxies: expected at least one (images, labels) batch, got none")
    return [
        (images.to(subnet.device, dtype), labels.to(subnet.device))
        for images, labels in subnet.batches
    ]
