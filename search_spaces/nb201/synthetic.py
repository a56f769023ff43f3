"""A synthetic, structured NAS-Bench-201-like table, for benchmarks and tests.

The real NAS-Bench-201 table cannot be downloaded here, so `synthetic_table(seed)` makes a
deterministic stand-in with the benchmark's qualitative structure:

- top-1 rises with convolutions (3x3 more than 1x1), a skip on the input -> output edge helps,
  pooling hurts a little, pairwise edge interactions (seeded) make the landscape rugged, and a
  cell whose output is not connected to its input scores chance level (10%);
- latency grows with the convolutions' MACs plus a per-op overhead, with seeded jitter;
- both have small seeded per-cell noise, like training seeds and timing noise.

So accuracy and latency trade off, the optimum is not separable per edge, and a search method
that exploits structure should beat random sampling. The numbers are not NAS-Bench-201's.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from search_spaces.nb201.cells import EDGES, KEYS, OPS
from search_spaces.nb201.space import NB201Space

_CONV1, _CONV3, _POOL, _SKIP, _NONE = (
    OPS.index(o) for o in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none")
)


def _connected(cells: np.ndarray) -> np.ndarray:
    """Whether node 3 is reachable from node 0 through edges that are not `none`."""
    reach = [np.ones(len(cells), dtype=bool)]
    for i in (1, 2, 3):
        live = np.zeros(len(cells), dtype=bool)
        for j in range(i):
            live |= reach[j] & (cells[:, EDGES.index((i, j))] != _NONE)
        reach.append(live)
    return reach[3]


def synthetic_table(seed: int = 0) -> list[dict[str, Any]]:
    """All 15,625 cells with `top1` (%), `latency_ms`, `macs` and `params`, deterministically."""
    rng = np.random.default_rng(seed)
    cells = np.array(list(itertools.product(range(len(OPS)), repeat=len(KEYS))))
    onehot = np.eye(len(OPS))[cells].reshape(len(cells), -1)  # (n, 30)
    # accuracy: per-(edge, op) effects around a structured prior, plus pairwise interactions
    prior = np.zeros((len(KEYS), len(OPS)))
    prior[:, _CONV3], prior[:, _CONV1], prior[:, _POOL], prior[:, _SKIP] = 1.0, 0.6, -0.2, 0.1
    prior[KEYS.index("edge_3_0"), _SKIP] = 0.9  # a residual path helps, as in the benchmark
    weights = prior.reshape(-1) + 0.25 * rng.standard_normal(prior.size)
    pairs = 0.08 * rng.standard_normal((onehot.shape[1], onehot.shape[1]))
    score = onehot @ weights + np.einsum("ni,ij,nj->n", onehot, np.triu(pairs, 1), onehot)
    top1 = 10.0 + 84.0 / (1.0 + np.exp(-(score - 2.0) / 1.2))
    top1 += 0.3 * rng.standard_normal(len(cells))
    top1 = np.where(_connected(cells), top1, 10.0)
    # latency: MACs-driven plus per-op overhead with seeded per-edge jitter
    space = NB201Space()
    archs = [dict(zip(KEYS, (OPS[k] for k in row), strict=True)) for row in cells]
    complexity = [space.complexity(a) for a in archs]
    macs = np.array([c["macs"] for c in complexity], dtype=np.float64)
    overhead = np.array([0.0, 0.08, 0.15, 0.2, 0.25])[cells] * (
        1.0 + 0.3 * rng.random((1, len(KEYS)))
    )
    latency = 0.8 + macs / 40e6 + overhead.sum(axis=1)
    latency *= 1.0 + 0.03 * rng.standard_normal(len(cells))
    return [
        {
            "arch": arch,
            "top1": round(float(t), 4),
            "latency_ms": round(float(lat), 5),
            "macs": c["macs"],
            "params": c["params"],
        }
        for arch, t, lat, c in zip(archs, top1, latency, complexity, strict=True)
    ]
