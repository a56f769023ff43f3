"""Latency tables of DARTS cells (FBNet, ProxylessNAS); the expectation is
`nas.train.search_latency.ExpectedLatency`.

A latency table maps one op on one edge shape to milliseconds: keys are
`darts/<op>/c<channels>/s<size>/x<stride>` (see `latency_key`). `measure_latency_table` times
each op module of `search_spaces.darts.ops` on CPU at every edge shape of a network;
`toy_latency_table` gives a deterministic analytic stand-in (MACs plus a memory term) for tests
and quick runs without profiling; `load_profile_table` reads the per-op table `nas profile
--space darts --device D` measured into the profile store (`search_spaces.darts.blocks` defines
the keys, the same for both).

The expected latency of a cell is the sum over its 14 edges of the op latencies weighted by the
softmax of the non-`none` alphas (`none` is never kept by `derive()`, so letting its weight lower
the latency would only reward a choice that is then discarded), scaled by `2 / inputs` per node
because a derived node keeps 2 of its `node + 2` incoming edges.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.artifacts import RunDir
from nas.errors import ArtifactError
from nas.train.search_latency import ExpectedLatency, median_ms, resolve_table
from search_spaces.darts.blocks import edge_shapes as darts_edge_shapes
from search_spaces.darts.blocks import op_key
from search_spaces.darts.counting import cell_plans, edge_geometry, op_cost
from search_spaces.darts.genotypes import CELL_OPS, PRIMITIVES, STEPS
from search_spaces.darts.space import DartsSpace

EdgeShape = tuple[int, int, int]  # channels, input size, stride


def latency_key(op: str, channels: int, size: int, stride: int) -> str:
    """The table key of `op` on an edge of `channels` at input side `size` with `stride`."""
    return op_key(op, channels, size, stride)


def edge_shapes(space: DartsSpace) -> list[EdgeShape]:
    """Every distinct edge shape of the space's network."""
    return darts_edge_shapes(space.init_channels, space.layers, space.image_size)


def toy_latency_table(space: DartsSpace) -> dict[str, float]:
    """An analytic table: 1 ms per 10 MMACs plus 0.002 ms per kilo-element written."""
    table: dict[str, float] = {}
    for channels, size, stride in edge_shapes(space):
        out_elements = channels * (size // stride) ** 2
        for op in CELL_OPS:
            _, macs = op_cost(op, channels, size, stride)
            memory = 0.0 if op == "skip_connect" and stride == 1 else out_elements / 1000
            table[latency_key(op, channels, size, stride)] = macs / 1e7 + 0.002 * memory
    return table


def measure_latency_table(
    space: DartsSpace, *, batch_size: int = 1, warmup: int = 3, repeats: int = 10
) -> dict[str, float]:
    """Median CPU milliseconds of each op (eval mode, no grad) at each edge shape."""
    from search_spaces.darts.ops import build_op

    table: dict[str, float] = {}
    for channels, size, stride in edge_shapes(space):
        x = torch.randn(batch_size, channels, size, size)
        for op_name in CELL_OPS:
            module = build_op(op_name, channels, stride)
            table[latency_key(op_name, channels, size, stride)] = median_ms(
                module, x, warmup=warmup, repeats=repeats)
    return table


def profile_blocks_path(runs_dir: Path, space: DartsSpace, device: str) -> Path:
    """Where `nas profile --space darts --image-size S [--space-option init_channels=C ...]
    --device D` keeps its block records (options only where they differ from the defaults)."""
    from nas.profile.store import ProfileStore, standalone_root

    return ProfileStore(standalone_root(runs_dir, space.name, space, device,
                                        _profile_options(space)), device).blocks_path


def _profile_options(space: DartsSpace) -> dict[str, int]:
    """The network options of `space` that differ from the default (`--space-option`s)."""
    default = DartsSpace()
    return {key: getattr(space, key) for key in ("init_channels", "layers")
            if getattr(space, key) != getattr(default, key)}


def _tables_by_setup(records: list[dict[str, Any]]) -> list[dict[str, float]]:
    """One `{key: ms}` table per measurement setup, batch 1 first, then the largest: the
    search's expectation is per image, and mixing setups would mix scales."""
    groups: dict[str, dict[str, list[float]]] = {}
    for record in records:
        if "block" in record and "latency_ms" in record:
            table = groups.setdefault(json.dumps(record.get("setup"), sort_keys=True), {})
            table.setdefault(str(record["block"]), []).append(float(record["latency_ms"]))

    def rank(item: tuple[str, dict[str, list[float]]]) -> tuple[bool, int]:
        setup = json.loads(item[0]) or {}
        return setup.get("batch_size", 1) == 1, len(item[1])

    # a block measured in several rounds counts with its median, as in `nas profile`'s table
    return [{key: statistics.median(values) for key, values in table.items()}
            for _, table in sorted(groups.items(), key=rank, reverse=True)]


def _how_to_profile(space: DartsSpace, device: str) -> str:
    options = "".join(f" --space-option {key}={value}"
                      for key, value in _profile_options(space).items())
    command = (f"nas profile --space darts --image-size {space.image_size}{options} "
               f"--device {device}")
    return (f"time the ops with `{command}` (blocks are measured first), or pass "
            "--latency-table measure (time them now) or toy")


def load_profile_table(
    runs_dir: Path, space: DartsSpace, device: str = "cpu", *, run_path: Path | None = None
) -> dict[str, float]:
    """The per-op table `nas profile` measured for `device`, as `{key: ms}`.

    Looks in the run's own profile (`run_path/profile/<device>/`, from `nas profile --run`)
    first, then in the standalone one of the space at this image size. The table must cover
    every op key of `space`'s network; otherwise `ArtifactError` says how to make one.
    """
    from nas.artifact_kinds import BLOCK_RECORD
    from nas.artifacts import read_jsonl
    from nas.profile.store import ProfileStore

    candidates = [profile_blocks_path(runs_dir, space, device)]
    if run_path is not None:
        candidates.insert(0, ProfileStore(run_path, device).blocks_path)
    needed = space.block_key_universe()
    how = _how_to_profile(space, device)
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise ArtifactError(f"no per-operation latency table for device '{device}' at "
                            f"{candidates[-1]}; {how}")
    table: dict[str, float] = {}
    for path in found:
        for table in _tables_by_setup(list(read_jsonl(path, BLOCK_RECORD))) or [{}]:
            missing = [key for key in needed if key not in table]
            if not missing:
                return {key: table[key] for key in needed}
    first = f"/s{space.image_size}/x1"
    widths = sorted({key.split("/")[2] for key in table if key.endswith(first)})
    raise ArtifactError(
        f"the latency table {path} lacks {len(missing)} of {len(needed)} op keys of this search "
        f"network (e.g. '{missing[0]}'; it has first-cell widths {', '.join(widths) or 'none'}, "
        f"this search needs c{space.init_channels}); {how}"
    )


def expected_latency(space: DartsSpace, table: Mapping[str, float]) -> ExpectedLatency:
    """The differentiable expected latency of the cells of `space`'s search network.

    Costs sum the table entries of every cell of a type; `none` is left out of the
    expectation (`derive()` never keeps it, so letting its weight lower the latency would only
    reward a choice that is then discarded), and each edge counts `2 / inputs` of its node
    because a derived node keeps 2 of its `node + 2` incoming edges. A missing table key
    raises `ArtifactError`.
    """
    costs = {cell: torch.zeros(14, len(PRIMITIVES)) for cell in ("normal", "reduce")}
    for plan in cell_plans(space.init_channels, space.layers, space.image_size):
        cell = "reduce" if plan.reduction else "normal"
        row = 0
        for node in range(STEPS):
            for source in range(node + 2):
                stride, size = edge_geometry(plan, source)
                for op in CELL_OPS:
                    key = latency_key(op, plan.channels, size, stride)
                    if key not in table:
                        raise ArtifactError(
                            f"latency table has no entry '{key}'; rebuild it for this space "
                            f"(init_channels={space.init_channels}, layers={space.layers}, "
                            f"image_size={space.image_size})"
                        )
                    costs[cell][row, PRIMITIVES.index(op)] += float(table[key])
                row += 1
    scale = torch.tensor([2.0 / (node + 2) for node in range(STEPS) for _ in range(node + 2)])
    return ExpectedLatency(costs, columns=range(1, len(PRIMITIVES)),
                           row_scale={"normal": scale, "reduce": scale})


def search_latency_table(
    source: str, space: DartsSpace, run: RunDir, *, resume: bool
) -> tuple[dict[str, float], bool]:
    """The latency table a search of `space` in `run` uses, and whether the run must keep it.

    `source` is a `--latency-table` value. Measured and profiled tables are kept in
    `supernet/latency_table.json`: the profile may grow and timings vary, and a resumed search
    must go on with the table it started with.
    """
    return resolve_table(
        source, run, resume=resume, toy=lambda: toy_latency_table(space),
        measure=lambda: measure_latency_table(space),
        profile=lambda device: load_profile_table(run.root, space, device, run_path=run.path))
