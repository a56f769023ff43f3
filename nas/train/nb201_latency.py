"""Latency tables of NAS-Bench-201 cell operations (FBNet, ProxylessNAS on `nb201`).

Keys are `nb201/<op>/c<channels>/s<side>`: one op of a cell edge at one stage of the network
(C channels at the image side, 2C at half of it, 4C at a quarter). Every cell shares one set of
alphas, so the cost of an op on an edge is the sum over stages of `cells_per_stage` times its
table entry. `none` costs nothing and stays in the expectation: in NB201 it is an operation a
derived cell may hold (an edge left out is faster).

`toy_latency_table` is analytic (1 ms per 10 MMACs plus 0.002 ms per kilo-element written,
as the DARTS one); `measure_latency_table` times each op module at batch 1 on this CPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from nas.artifacts import RunDir
from nas.errors import ArtifactError
from nas.train.search_latency import ExpectedLatency, median_ms, resolve_table
from search_spaces.nb201.cells import CONV_KERNELS, KEYS, OPS
from search_spaces.nb201.space import NB201Space

CELL_OPS = OPS[1:]  # `none` has no entry: it costs nothing


def latency_key(op: str, channels: int, side: int) -> str:
    return f"nb201/{op}/c{channels}/s{side}"


def stage_shapes(space: NB201Space) -> list[tuple[int, int]]:
    """`(channels, side)` of the cells of each stage."""
    return [(space.channels * 2**stage, space.image_size // 2**stage) for stage in range(3)]


def toy_latency_table(space: NB201Space) -> dict[str, float]:
    table = {}
    for channels, side in stage_shapes(space):
        elements = channels * side * side
        for op in CELL_OPS:
            kernel = CONV_KERNELS.get(op, 0)
            macs = kernel * kernel * channels * elements
            memory = 0.0 if op == "skip_connect" else elements / 1000
            table[latency_key(op, channels, side)] = macs / 1e7 + 0.002 * memory
    return table


def measure_latency_table(
    space: NB201Space, *, warmup: int = 3, repeats: int = 10
) -> dict[str, float]:
    """Median CPU milliseconds of each op (batch 1, eval mode, no grad) at each stage."""
    from search_spaces.nb201.ops import build_op

    table = {}
    for channels, side in stage_shapes(space):
        x = torch.randn(1, channels, side, side)
        for op in CELL_OPS:
            module = build_op(op, channels)
            assert module is not None
            table[latency_key(op, channels, side)] = median_ms(module, x, warmup=warmup,
                                                               repeats=repeats)
    return table


def expected_latency(space: NB201Space, table: Mapping[str, float]) -> ExpectedLatency:
    """The expected latency of `space`'s network's cells (see the module docstring)."""
    costs = torch.zeros(len(KEYS), len(OPS))
    for channels, side in stage_shapes(space):
        for op in CELL_OPS:
            key = latency_key(op, channels, side)
            if key not in table:
                raise ArtifactError(
                    f"latency table has no entry '{key}'; rebuild it for this network "
                    f"(channels={space.channels}, image_size={space.image_size}), e.g. with "
                    "--latency-table measure")
            costs[:, OPS.index(op)] += space.cells_per_stage * float(table[key])
    return ExpectedLatency({"cell": costs}, columns=range(len(OPS)))


def search_latency_table(
    source: str, space: NB201Space, run: RunDir, *, resume: bool
) -> tuple[dict[str, float], bool]:
    """The table a search of `space` uses (`nas.train.search_latency.resolve_table`)."""
    return resolve_table(source, run, resume=resume, toy=lambda: toy_latency_table(space),
                         measure=lambda: measure_latency_table(space))
