"""The ranking report folder: `report.json`, `subnets.csv` and `scatter.png`, written atomically.

`report.json`::

    {"n": 200, "top_fraction": 0.1,
     "scores": {SCORER: {"kendall_tau": {"value", "low", "high"}, "spearman": ...,
                         "precision_top10": ..., "tau_top10": ...}},
     "seconds_per_subnet": {SCORER: mean seconds}, "cpu_seconds_per_subnet": {...},
     "subnets": [{"arch", "arch_id", "truth", SCORER: value, "params", "macs", "bin"}],
     ...settings the caller adds (seed, resamples, space ...)}

JSON has no infinities or NaN: such a score (a singular NASWOT kernel gives -inf) is written as
null in `report.json`; `subnets.csv` keeps `-inf`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch import canonical_json
from nas.artifacts import atomic_write_json, atomic_write_text
from nas.errors import ConfigError
from nas.rank.metrics import RankingMetrics
from nas.rank.sampling import SampledSubnet

REPORT_JSON = "report.json"
SUBNETS_CSV = "subnets.csv"
SCATTER_PNG = "scatter.png"
_COLUMNS = ("arch", "arch_id", "truth", "params", "macs", "bin")


@dataclass(frozen=True)
class RankedSubnet:
    """One ranked subnet: the sampled subnet, its truth, each scorer's value and its seconds."""

    subnet: SampledSubnet
    truth: float
    scores: Mapping[str, float]
    seconds: Mapping[str, float] = field(default_factory=dict)
    cpu_seconds: Mapping[str, float] = field(default_factory=dict)


def write_report(
    folder: Path,
    subnets: Sequence[RankedSubnet],
    metrics: Mapping[str, RankingMetrics],
    *,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the three files into `folder` (created if needed) and return the JSON written.

    Args:
        folder: the report folder, e.g. `runs/NAME/rank/TAG/`.
        subnets: the ranked subnets; each has a value for every scorer of `metrics`.
        metrics: scorer name -> its metrics (from `ranking_metrics`).
        settings: extra top-level keys of `report.json` (seed, resamples, space ...).

    Raises:
        ConfigError: a scorer named like a subnet column, or a subnet without a scorer's value.
    """
    _check(subnets, metrics)
    report = {
        **dict(settings or {}),
        "n": len(subnets),
        "top_fraction": next(iter(metrics.values())).top_fraction if metrics else None,
        "scores": {name: m.as_dict() for name, m in metrics.items()},
        "seconds_per_subnet": _mean_seconds([s.seconds for s in subnets]),
        "cpu_seconds_per_subnet": _mean_seconds([s.cpu_seconds for s in subnets]),
        "subnets": [_json_row(s, metrics) for s in subnets],
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / REPORT_JSON, report)
    atomic_write_text(folder / SUBNETS_CSV, _csv_text(subnets, list(metrics)))
    from nas.rank.plot import scatter_plot  # matplotlib only when a report is written

    scatter_plot(folder / SCATTER_PNG, subnets, metrics)
    return report


def _check(subnets: Sequence[RankedSubnet], metrics: Mapping[str, RankingMetrics]) -> None:
    clash = sorted(set(metrics) & {"arch", "arch_id", "truth", "bin"})
    if clash:
        raise ConfigError(f"report: scorer name '{clash[0]}' is taken by a subnet column")
    for ranked in subnets:
        missing = [name for name in metrics if name not in ranked.scores]
        if missing:
            raise ConfigError(
                f"report: subnet {ranked.subnet.arch_id} has no value for {', '.join(missing)}; "
                "score every subnet with every scorer"
            )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_row(ranked: RankedSubnet, metrics: Mapping[str, RankingMetrics]) -> dict[str, Any]:
    subnet = ranked.subnet
    return {
        "arch": dict(subnet.arch),
        "arch_id": subnet.arch_id,
        "truth": ranked.truth,
        **{name: _finite(float(ranked.scores[name])) for name in metrics},
        "params": subnet.params,
        "macs": subnet.macs,
        "bin": subnet.bin,
    }


def _mean_seconds(per_subnet: Sequence[Mapping[str, float]]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for costs in per_subnet:
        for name, seconds in costs.items():
            totals.setdefault(name, []).append(seconds)
    return {name: sum(values) / len(values) for name, values in totals.items()}


def _csv_text(subnets: Sequence[RankedSubnet], scorers: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = [name for name in scorers if name not in _COLUMNS]
    writer.writerow(["arch_id", "bin", "params", "macs", "truth", *extra, "arch"])
    for ranked in subnets:
        s = ranked.subnet
        values = [repr(float(ranked.scores[name])) for name in extra]
        writer.writerow(
            [
                s.arch_id,
                s.bin,
                s.params,
                s.macs,
                repr(ranked.truth),
                *values,
                canonical_json(s.arch),
            ]
        )
    return buffer.getvalue()
