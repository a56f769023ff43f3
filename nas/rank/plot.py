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

# A scorer whose magnitudes span more than this ratio (synflow: dozens of decades; snip and jacov
# have long tails) is drawn on a log axis (symmetric-log with negative values; zeros are left
# out of a log axis), or all but a few subnets would sit in one column.
_LOG_RATIO = 100.0


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
    if names:
        axes[0].legend(fontsize=7, loc="best")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    figure.tight_layout()
    atomic_save_with(path, lambda tmp: figure.savefig(tmp, format="png"))


def _panel(ax: Axes, name: str, subnets: Sequence[RankedSubnet], metric: RankingMetrics) -> None:
    finite = [s for s in subnets if math.isfinite(s.scores[name])]
    scale = _scale([s.scores[name] for s in finite])
    shown = [s for s in finite if s.scores[name] > 0] if scale == "log" else finite
    for label in sorted({s.subnet.bin for s in subnets}):
        members = [s for s in shown if s.subnet.bin == label]
        ax.scatter(
            [s.scores[name] for s in members],
            [s.truth for s in members],
            s=10,
            alpha=0.7,
            color=f"C{label % 10}",
            label=f"size bin {label}" + (" (smallest)" if label == 0 else ""),
        )
    if scale == "symlog":
        magnitudes = [abs(s.scores[name]) for s in finite if s.scores[name] != 0]
        ax.set_xscale("symlog", linthresh=min(magnitudes))
    else:
        ax.set_xscale(scale)
    tau = metric.kendall_tau
    interval = "" if math.isnan(tau.low) else f" [{tau.low:.2f}, {tau.high:.2f}]"
    hidden = len(subnets) - len(shown)
    note = f" ({hidden} not drawn)" if hidden else ""  # -inf, or <= 0 on a log axis
    ax.set_title(f"{name}: tau {tau.value:.3f}{interval}{note}", fontsize=9)
    ax.set_xlabel(name)
    ax.set_ylabel("truth")
    ax.grid(alpha=0.3)


def _scale(values: list[float]) -> str:
    """Linear, or log when the magnitudes span more than `_LOG_RATIO` (symlog with negatives)."""
    magnitudes = [abs(v) for v in values if v != 0]
    if not magnitudes or max(magnitudes) / min(magnitudes) <= _LOG_RATIO:
        return "linear"
    return "log" if min(values) >= 0 else "symlog"
