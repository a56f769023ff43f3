"""Zero-cost proxies: training-free scores of a subnet, higher predicting better.

Registered names (`PROXIES.names()`): `params`, `macs` (from the space), `synflow`, `snip`,
`grasp` (gradient saliencies), `jacov`, `naswot` (activation patterns). Score a subnet with
`compute_proxies(names, ProxyInput(model, batches, complexity=...))`; combine several over a
population with `nas.rank.combined.rank_average`.
"""

from __future__ import annotations

from nas.rank.proxies import activations, gradients, size  # noqa: F401  (register the proxies)
from nas.rank.proxies.base import (
    PROXIES,
    Batch,
    ProxyFn,
    ProxyInput,
    ProxyScore,
    compute_proxies,
    register_proxy,
    seeded_init,
)

__all__ = [
    "PROXIES",
    "Batch",
    "ProxyFn",
    "ProxyInput",
    "ProxyScore",
    "compute_proxies",
    "register_proxy",
    "seeded_init",
]
