"""Expected latency of a searched cell, differentiable in the alphas (FBNet, ProxylessNAS).

A latency table maps a key naming one op at one edge shape to milliseconds; each space family
turns its table into cost matrices, one `(edges, ops)` matrix per cell type: the milliseconds
an op on an edge adds to the whole network (summed over the cells of that type). The expected
latency is then the sum over cell types and edges of the costs weighted by the softmax of the
alphas over the ops that a derived cell may hold (`columns`), times a per-edge factor
(`row_scale`: a DARTS node keeps 2 of its inputs, so each of its edges counts 2 / inputs).

Sources of a table (`--latency-table`): a JSON/JSONL file, `toy` (analytic, for tests),
`measure` (time the ops on this CPU now) and, where the family has one, `profile[:DEVICE]`
(`nas profile`'s per-op records). Measured and profiled tables are kept in the run
(`supernet/latency_table.json`): timings vary and profiles grow, and a resumed search goes on
with the table it started with.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.artifacts import RunDir
from nas.errors import ArtifactError
from nas.readers import Kind, finite, read_text

PROFILE = "profile"  # --latency-table profile[:DEVICE]


class ExpectedLatency:
    """Differentiable expected latency of a cell's derived operations (ms).

    Args:
        costs: per cell type, `(edges, ops)` milliseconds of each op on each edge.
        columns: the ops a derived cell may hold (DARTS leaves out `none`).
        row_scale: per cell type, `(edges,)` factors of the expectation (default 1).
    """

    def __init__(self, costs: Mapping[str, torch.Tensor], *, columns: Sequence[int],
                 row_scale: Mapping[str, torch.Tensor] | None = None) -> None:
        self.costs = {cell: value.float() for cell, value in costs.items()}
        self.columns = list(columns)
        self.row_scale = {cell: (row_scale or {}).get(cell, torch.ones(value.shape[0]))
                          for cell, value in self.costs.items()}

    def __call__(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Expected milliseconds under the softmax of `alphas` (per cell type)."""
        total = next(iter(alphas.values())).new_zeros(())
        for cell, logits in alphas.items():
            probs = F.softmax(logits[:, self.columns], dim=-1)
            costs = self.costs[cell][:, self.columns].to(logits.device)
            scale = self.row_scale[cell].to(logits.device).unsqueeze(1)
            total = total + (probs * costs * scale).sum()
        return total

    def of_weights(self, weights: Mapping[str, torch.Tensor]) -> float:
        """Table latency of a discrete subnet given as one-hot `(edges, ops)` weights."""
        return float(sum((weights[cell].cpu() * costs).sum()
                         for cell, costs in self.costs.items()))


def median_ms(module: nn.Module, x: torch.Tensor, *, warmup: int, repeats: int) -> float:
    """Median wall milliseconds of `module(x)` in eval mode without gradients."""
    module.eval()
    times = []
    with torch.no_grad():
        for index in range(warmup + repeats):
            start = time.perf_counter()
            module(x)
            if index >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def latency_loss(
    ce: torch.Tensor, latency: torch.Tensor, *, form: str, target: float, weight: float,
    exponent: float,
) -> torch.Tensor:
    """Combine cross-entropy with expected latency.

    `form="multiplicative"` (FBNet): `ce * weight * (latency / target) ** exponent`.
    `form="additive"` (ProxylessNAS): `ce + weight * (latency - target) / target`.
    """
    ratio = latency / target
    if form == "multiplicative":
        return ce * weight * ratio.pow(exponent)
    return ce + weight * (ratio - 1.0)


LATENCY_TABLE = Kind("per-operation latency table",
                     remedy="fix the file, or pass --latency-table measure (or toy)")


def load_latency_table(path: Path) -> dict[str, float]:
    """A table from JSON (`{key: ms}` or `{"entries": {key: ms}}`) or JSONL (`{"key", "ms"}`)."""
    if not path.is_file():
        raise ArtifactError(f"latency table: expected a JSON/JSONL file, toy, measure, profile "
                            f"or profile:DEVICE, got '{path}' (no such file)")
    text = read_text(path, LATENCY_TABLE)
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            data: Any = {str(r["key"]): r.get("ms", r.get("latency_ms")) for r in rows}
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: expected {{key: ms}} JSON or key/ms JSONL ({exc})") from None
    if isinstance(data, Mapping) and isinstance(data.get("entries"), Mapping):
        data = data["entries"]
    if not isinstance(data, Mapping):
        raise ArtifactError(f"{path}: expected a JSON object of key -> milliseconds")
    return {str(k): _milliseconds(v, path, str(k)) for k, v in data.items()}


def _milliseconds(value: Any, path: Path, key: str) -> float:
    ms = finite(value, path, f"entry '{key}'", LATENCY_TABLE)
    if ms < 0:
        raise ArtifactError(f"{path}: entry '{key}': expected a latency >= 0 ms, got {ms}")
    return ms


def profile_device(source: str | None) -> str | None:
    """The device of a `profile` / `profile:DEVICE` table source (None for other sources)."""
    if source is None or not (source == PROFILE or source.startswith(PROFILE + ":")):
        return None
    return source.partition(":")[2] or "cpu"


def resolve_table(
    source: str, run: RunDir, *, resume: bool, toy: Callable[[], dict[str, float]],
    measure: Callable[[], dict[str, float]],
    profile: Callable[[str], dict[str, float]] | None = None,
) -> tuple[dict[str, float], bool]:
    """The table `source` names, and whether the run must keep it (see the module docstring).

    Args:
        source: a `--latency-table` value.
        toy, measure, profile: the family's makers of those tables (`profile` takes the
            device; None: the family has no profiled tables).
    """
    device = profile_device(source)
    saved = run.sub("supernet", "latency_table.json")
    if (source == "measure" or device is not None) and resume and saved.is_file():
        return load_latency_table(saved), False
    if source == "toy":
        return toy(), False
    if source == "measure":
        return measure(), True
    if device is not None:
        if profile is None:
            raise ArtifactError(f"--latency-table {source}: this space has no per-operation "
                                "profile; pass measure (time the ops now), toy or a JSON file")
        return profile(device), True
    return load_latency_table(Path(source)), False


__all__ = [
    "PROFILE", "ExpectedLatency", "latency_loss", "load_latency_table", "median_ms",
    "profile_device", "resolve_table",
]
