"""Draw a genotype's normal and reduction cells to a PNG with matplotlib (no graphviz)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nas.arch import Arch
from nas.artifacts import atomic_save_with
from search_spaces.darts.genotypes import STEPS

_COLORS = {
    "sep_conv_3x3": "tab:blue", "sep_conv_5x5": "tab:cyan", "dil_conv_3x3": "tab:green",
    "dil_conv_5x5": "tab:olive", "max_pool_3x3": "tab:red", "avg_pool_3x3": "tab:orange",
    "skip_connect": "tab:gray",
}


def _positions() -> dict[int | str, tuple[float, float]]:
    # inputs on the left, then the nodes rising and falling left to right (a zigzag keeps
    # edges between neighbours short and apart), the output on the right
    pos: dict[int | str, tuple[float, float]] = {0: (0.0, 3.0), 1: (0.0, 0.0)}
    for node in range(STEPS):
        pos[node + 2] = (2.0 + 2.0 * node, 2.4 if node % 2 == 0 else 0.6)
    pos["out"] = (2.0 + 2.0 * STEPS + 0.5, 1.5)
    return pos


def _bend(slot: int, source: int, target: int) -> float:
    """Curvature of an edge: the two inputs of a node bend opposite ways, longer edges less."""
    span = max(1, target - source)
    return (0.3 if slot % 2 else -0.3) / math.sqrt(span)


def _on_curve(x0: float, y0: float, x1: float, y1: float, rad: float,
              t: float) -> tuple[float, float]:
    """Point `t` of matplotlib's arc3 curve (a quadratic Bezier) in data units (the axes are
    drawn with an equal aspect, so data and display agree)."""
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
    return a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1


# where along an edge its label may go, best first; label boxes are about this big (data units)
_SPOTS = (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8)
_LABEL_W, _LABEL_H = 1.25, 0.3


def _free_spot(curve: tuple[float, float, float, float, float],
               taken: list[tuple[float, float]]) -> tuple[float, float]:
    """The first spot on the curve whose label box overlaps none already placed."""
    spots = [_on_curve(*curve, t) for t in _SPOTS]
    for x, y in spots:
        if all(abs(x - u) > _LABEL_W or abs(y - v) > _LABEL_H for u, v in taken):
            return x, y
    return spots[0]


def label_spots(edges: list[list[Any]]) -> list[tuple[float, float]]:
    """Where each edge's operation label goes: on its curve, clear of the other labels and
    of the nodes when the curve allows it."""
    pos = _positions()
    taken: list[tuple[float, float]] = list(pos.values())  # node boxes count as taken
    spots = []
    for slot, (_, source) in enumerate(edges):
        target = slot // 2 + 2
        (x0, y0), (x1, y1) = pos[int(source)], pos[target]
        spot = _free_spot((x0, y0, x1, y1, _bend(slot, int(source), target)), taken)
        taken.append(spot)
        spots.append(spot)
    return spots


def _draw_cell(ax: Any, edges: list[list[Any]], concat: list[int], title: str) -> None:
    pos = _positions()
    names: dict[int | str, str] = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos["out"]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": "lightgray", "shrinkA": 16,
                                "shrinkB": 16})
    for slot, ((op, source), (x, y)) in enumerate(zip(edges, label_spots(edges), strict=True)):
        target = slot // 2 + 2
        (x0, y0), (x1, y1) = pos[int(source)], pos[target]
        rad = _bend(slot, int(source), target)
        color = _COLORS.get(op, "black")
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "->", "color": color, "lw": 1.6,
            "connectionstyle": f"arc3,rad={rad}", "shrinkA": 16, "shrinkB": 16})
        # on the curve itself, boxed so crossing edges do not run through the text
        ax.text(x, y, op, fontsize=7.5, ha="center", va="center", color=color, zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": color, "lw": 0.6})
    for key, (x, y) in pos.items():
        label = names.get(key, str(int(key) - 2) if isinstance(key, int) else str(key))
        ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=5,
                bbox={"boxstyle": "round", "fc": "lightyellow" if isinstance(key, int) and key >= 2
                      else "lightblue", "ec": "black"})
    ax.set_title(title)
    ax.set_xlim(-0.8, 2.0 + 2.0 * STEPS + 1.3)
    ax.set_ylim(-0.9, 3.9)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_genotype(genotype: Arch, path: Path) -> None:
    """Write both cells of `genotype` side by side to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one cell per row: side by side, the labels of a cell's eight edges had no room
    fig, axes = plt.subplots(2, 1, figsize=(11, 9))
    _draw_cell(axes[0], list(genotype["normal"]), list(genotype["normal_concat"]), "normal cell")
    _draw_cell(axes[1], list(genotype["reduce"]), list(genotype["reduce_concat"]),
               "reduction cell")
    fig.tight_layout()
    atomic_save_with(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
