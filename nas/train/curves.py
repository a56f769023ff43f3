"""Training curves: `supernet/curves.png` (or `train/curves.png`) from a `metrics.jsonl`.

Drawn when training ends and again on demand (`nas runs plot NAME`), so a run killed midway
can be looked at too. Headless (matplotlib's Agg backend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.artifacts import RunLayout, atomic_save_with, read_jsonl

CURVES = "curves.png"
METRICS = "metrics.jsonl"  # the loop's default log name
# panels: (title, metric-name prefixes or names); a panel with no data is left out
_PANELS = (
    ("loss", ("loss",)),
    ("training accuracy", ("acc", "train_top1")),
    ("validation", ("val_", "top1_")),
    ("learning rate", ("lr",)),
)


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _series(records: Sequence[Mapping[str, Any]], prefixes: Sequence[str]) -> dict[str, Any]:
    """metric -> (steps, values) for metrics starting with one of `prefixes`."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        values = _numbers(record)
        step = values.get("step")
        if step is None:
            continue
        for name, value in values.items():
            if name in ("step", "epoch", "world_size", "images_per_s", "seconds"):
                continue
            if any(name == p or name.startswith(p) for p in prefixes):
                steps, ys = found.setdefault(name, ([], []))
                steps.append(step)
                ys.append(value)
    return found


def plot_curves(metrics_file: Path, out: Path | None = None, *, title: str = "") -> Path | None:
    """Draw the curves of `metrics_file` into `out` (default: `curves.png` beside it).

    Returns the PNG's path, or None when the log holds no step yet.
    """
    records = [r for r in read_jsonl(metrics_file) if isinstance(r, Mapping)] \
        if metrics_file.is_file() else []
    panels = [(name, _series(records, prefixes)) for name, prefixes in _PANELS]
    panels = [(name, series) for name, series in panels if series]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(7.0, 2.4 * len(panels)), dpi=100,
                             sharex=True, squeeze=False)
    for ax, (name, series) in zip(axes[:, 0], panels, strict=True):
        for metric, (steps, values) in sorted(series.items()):
            ax.plot(steps, values, label=metric, linewidth=1.2,
                    marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", ncol=2)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(title or f"training curves: {metrics_file.parent}", fontsize=10)
    fig.tight_layout()
    target = out or metrics_file.parent / CURVES
    atomic_save_with(target, lambda path: fig.savefig(path, format="png"))
    plt.close(fig)
    return target


def plot_run_curves(run: RunLayout, *, name: str = "") -> list[Path]:
    """Redraw `curves.png` of every training log of `run` (the supernet's, the network's
    trained alone), also of a training still running or killed; the PNGs drawn."""
    drawn = []
    for folder, what in ((run.supernet_dir, "supernet"), (run.train_dir, "trained alone")):
        png = plot_curves(folder / METRICS, title=f"training curves: {name} ({what})")
        if png is not None:
            drawn.append(png)
    return drawn


__all__ = ["CURVES", "plot_curves", "plot_run_curves"]
