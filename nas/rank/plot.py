"""The ranking scatter: each scorer's value against the truth, one colour per size bin."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nas.artifacts import atomic_save_with
from nas.rank.metrics import RankingMetrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from nas.rank.report import RankedSubnet

# A scorer whose positive values span more than this ratio (synflow: dozens of decades) is
# drawn on a log axis, or all but its largest subnets would sit in one column.
_LOG_RATIO = 1e3


def scatter_plot(
    path: Path, subnets: Sequence[RankedSubnet], metrics: Mapping[str, RankingMetrics]
) -> None:
    """PNG with one panel per scorer (value vs truth), Kendall tau and its interval as title.

    Non-finite values (a singular NASWOT kernel) are left out of their panel.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state, Agg by default

    names = list(metrics)
    columns = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows), dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        _panel(ax, name, subnets, metrics[name])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    figure.tight_layout()
    atomic_save_with(path, lambda tmp: figure.savefig(tmp, format="png"))


def _panel(ax: Axes, name: str, subnets: Sequence[RankedSubnet], metric: RankingMetrics) -> None:
    bins = sorted({s.subnet.bin for s in subnets})
    colours = [f"C{i % 10}" for i in range(len(bins))]
    for colour, label in zip(colours, bins, strict=True):
        members = [s for s in subnets if s.subnet.bin == label and math.isfinite(s.scores[name])]
        ax.scatter(
            [s.scores[name] for s in members],
            [s.truth for s in members],
            s=10,
            alpha=0.7,
            color=colour,
            label=f"size bin {label}",
        )
    values = [s.scores[name] for s in subnets if math.isfinite(s.scores[name])]
    if values and min(values) > 0 and max(values) / min(values) > _LOG_RATIO:
        ax.set_xscale("log")
    tau = metric.kendall_tau
    interval = "" if math.isnan(tau.low) else f" [{tau.low:.2f}, {tau.high:.2f}]"
    ax.set_title(f"{name}: tau {tau.value:.3f}{interval}", fontsize=10)
    ax.set_xlabel(name)
    ax.set_ylabel("truth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
