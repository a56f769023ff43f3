"""The NAS-Bench-201 cell: its ops and edges, and the benchmark's string form (pure python).

Kept apart from the space so that the torch modules (network, search cell) and the space read
the same constants without importing each other.
"""

from __future__ import annotations

from nas.arch import Arch
from nas.errors import InvalidArchError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node i, from node j)
KEYS = tuple(f"edge_{i}_{j}" for i, j in EDGES)
CONV_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def to_string(arch: Arch) -> str:
    """The NAS-Bench-201 string of a canonical arch."""
    nodes = [
        "|" + "|".join(f"{arch[f'edge_{i}_{j}']}~{j}" for j in range(i)) + "|" for i in (1, 2, 3)
    ]
    return "+".join(nodes)


def from_string(text: str) -> dict[str, str]:
    """Parse a NAS-Bench-201 string into a canonical (not yet validated) arch."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise InvalidArchError(
            f"nb201 string: expected 3 nodes joined by '+', got {len(nodes)} in '{text}'"
        )
    arch: dict[str, str] = {}
    for i, node in enumerate(nodes, start=1):
        edges = [e for e in node.strip().strip("|").split("|") if e]
        if len(edges) != i:
            raise InvalidArchError(f"nb201 string: node {i} expects {i} inputs, got '{node}'")
        for edge in edges:
            op, sep, source = edge.rpartition("~")
            if not sep or not source.isdigit() or int(source) >= i:
                raise InvalidArchError(
                    f"nb201 string: expected 'op~j' with j < {i}, got '{edge}' in node {i}"
                )
            arch[f"edge_{i}_{int(source)}"] = op
    if len(arch) != len(KEYS):
        raise InvalidArchError(f"nb201 string: an input node appears twice in '{text}'")
    return arch
