"""Search outputs in `runs/NAME/search/TAG/`: pareto.json/.csv, trials.jsonl and pareto.png.

`pareto.json` is `{"front": [{"arch", "arch_id", "values": {metric: number}, "violation"}],
"objectives": [{"name", "direction", "unit"}], "constraints": [{"metric", "max", "min"}],
"device", "space", "config"}`; `nas export --pick` reads it. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.artifacts import atomic_save_with, atomic_write_json, atomic_write_text, json_ready
from nas.search.base import Candidate, Constraint, Objective


def member(candidate: Candidate, **more: Any) -> dict[str, Any]:
    """A front member as stored in pareto.json."""
    return {
        "arch": dict(candidate.arch),
        "arch_id": candidate.arch_id,
        "values": dict(candidate.values),
        "violation": candidate.violation,
        **more,
    }


def flat(candidate: Candidate, **more: Any) -> dict[str, Any]:
    """A candidate as one flat object (`--json`, trials.jsonl): arch, arch_id, metrics."""
    return {
        "arch": dict(candidate.arch),
        "arch_id": candidate.arch_id,
        **dict(candidate.values),
        **more,
    }


def objective_info(objectives: Sequence[Objective]) -> list[dict[str, str]]:
    return [{"name": o.name, "direction": o.direction, "unit": o.unit} for o in objectives]


def constraint_info(constraints: Sequence[Constraint]) -> list[dict[str, Any]]:
    return [{"metric": c.metric, "max": c.max, "min": c.min} for c in constraints]


def write_front(
    directory: Path,
    front: Sequence[Candidate],
    *,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    header: Mapping[str, Any],
    measured: Mapping[str, float] | None = None,
) -> None:
    """Write pareto.json and pareto.csv (one column per arch key and per metric)."""
    measured = measured or {}

    def extra(c: Candidate) -> dict[str, Any]:
        if c.arch_id not in measured:
            return {}
        over = measured_over(measured[c.arch_id], constraints)
        return {"measured_latency_ms": measured[c.arch_id], "measured_over_budget": over}

    atomic_write_json(
        directory / "pareto.json",
        {
            **header,
            "objectives": objective_info(objectives),
            "constraints": constraint_info(constraints),
            "front": [member(c, **extra(c)) for c in front],
        },
    )
    arch_keys = sorted({k for c in front for k in c.arch})
    metrics = sorted({k for c in front for k in c.values})
    columns = ["arch_id", *arch_keys, *metrics] + (
        ["measured_latency_ms", "measured_over_budget"] if measured else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for c in front:
        cells = [c.arch_id, *(_cell(c.arch.get(k)) for k in arch_keys)]
        cells += [c.values.get(m, "") for m in metrics]
        if measured:
            value = measured.get(c.arch_id)
            cells += ["", ""] if value is None else [value, measured_over(value, constraints)]
        writer.writerow(cells)
    atomic_write_text(directory / "pareto.csv", buffer.getvalue())


def measured_over(latency_ms: float, constraints: Sequence[Constraint]) -> bool:
    """Whether a measured latency breaks a constraint on latency (predicted, it did not)."""
    return any(c.metric.startswith("latency") and c.max is not None and latency_ms > c.max
               for c in constraints)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def write_trials(directory: Path, history: Sequence[Candidate], rejected: int) -> None:
    """trials.jsonl: every scored subnet, in the order the search used it."""
    lines = [
        json.dumps(json_ready(flat(c, violation=c.violation, order=i)), sort_keys=True)
        for i, c in enumerate(history)
    ]
    atomic_write_text(directory / "trials.jsonl", "\n".join(lines) + ("\n" if lines else ""))


def _label(objective: Objective | None, name: str) -> str:
    unit = objective.unit if objective is not None else ""
    return f"{name} ({unit})" if unit else name


def plot_front(
    path: Path,
    history: Sequence[Candidate],
    front: Sequence[Candidate],
    *,
    x: Objective,
    y: Objective,
    constraints: Sequence[Constraint],
    title: str,
    measured: Mapping[str, float] | None = None,
) -> None:
    """PNG: every scored subnet, the front as a staircase, constraint lines; headless (Agg).

    `measured` (latency by arch_id) adds the front's measured latencies as hollow markers,
    beside the predicted ones, when the x axis is the latency.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    feasible = [c for c in history if c.feasible]
    infeasible = [
        c for c in history if not c.feasible and x.name in c.values and y.name in c.values
    ]
    ax.scatter(
        [c.values[x.name] for c in feasible],
        [c.values[y.name] for c in feasible],
        s=9,
        alpha=0.35,
        color="tab:gray",
        label=f"evaluated ({len(feasible)})",
    )
    if infeasible:
        ax.scatter(
            [c.values[x.name] for c in infeasible],
            [c.values[y.name] for c in infeasible],
            s=9,
            alpha=0.35,
            marker="x",
            color="tab:orange",
            label="infeasible",
        )
    ordered = sorted(front, key=lambda c: c.values[x.name])
    ax.step(
        [c.values[x.name] for c in ordered],
        [c.values[y.name] for c in ordered],
        where="post",
        color="tab:blue",
        linewidth=1.2,
    )
    ax.scatter(
        [c.values[x.name] for c in ordered],
        [c.values[y.name] for c in ordered],
        s=22,
        color="tab:blue",
        label=f"Pareto front ({len(front)})",
        zorder=3,
    )
    if measured and x.name.startswith("latency"):
        timed = [c for c in ordered if c.arch_id in measured]
        ax.scatter(
            [measured[c.arch_id] for c in timed],
            [c.values[y.name] for c in timed],
            s=30,
            facecolors="none",
            edgecolors="tab:green",
            zorder=3,
            label="front, measured here",
        )
    for constraint in constraints:
        for bound in (constraint.max, constraint.min):
            if bound is None:
                continue
            if constraint.metric == x.name:
                ax.axvline(bound, color="tab:red", linestyle="--", label=constraint.describe())
            elif constraint.metric == y.name:
                ax.axhline(bound, color="tab:red", linestyle="--", label=constraint.describe())
    ax.set_xlabel(_label(x, x.name))
    ax.set_ylabel(_label(y, y.name))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    atomic_save_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def hypervolume_curve(
    history: Sequence[Candidate], objectives: Sequence[Objective]
) -> list[float]:
    """Hypervolume of the feasible subnets among the first i evaluated, for every i.

    Objectives are scaled to [0, 1] over the whole history (so the curve ends near the
    hypervolume of the final front, in the same units throughout); reference point 1.1.
    """
    import numpy as np

    from nas.search.base import costs
    from nas.search.hypervolume import hypervolume

    names = [o.name for o in objectives]
    usable = [c.feasible and all(n in c.values for n in names) for c in history]
    points = [c for c, ok in zip(history, usable, strict=True) if ok]
    if not points:
        return [0.0] * len(history)
    matrix = costs(points, objectives)
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    scaled = (matrix - low) / np.where(high > low, high - low, 1.0)
    reference = [1.1] * len(objectives)
    curve, seen, value = [], 0, 0.0
    for ok in usable:
        if ok:
            seen += 1
            value = hypervolume(scaled[:seen], reference)
        curve.append(value)
    return curve


def plot_hypervolume(
    path: Path, history: Sequence[Candidate], objectives: Sequence[Objective], *, title: str
) -> None:
    """PNG: the hypervolume of the front found so far against the subnets evaluated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = hypervolume_curve(history, objectives)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    ax.plot(range(1, len(curve) + 1), curve, color="tab:blue", linewidth=1.4)
    ax.set_xlabel("subnets evaluated")
    ax.set_ylabel("hypervolume (objectives scaled to [0, 1])")
    ax.set_title(f"{title}: {' vs '.join(o.name for o in objectives)}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
