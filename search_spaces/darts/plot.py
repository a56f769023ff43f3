"""Draw a genotype's normal and reduction cells to a PNG with matplotlib (no graphviz)."""

from __future__ import annotations

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
    # inputs on the left, nodes in a staggered column, the output on the right
    pos: dict[int | str, tuple[float, float]] = {0: (0.0, 0.8), 1: (0.0, 0.2)}
    for node in range(STEPS):
        pos[node + 2] = (1.0 + node, 0.75 if node % 2 == 0 else 0.25)
    pos["out"] = (STEPS + 1.2, 0.5)
    return pos


def _draw_cell(ax: Any, edges: list[list[Any]], concat: list[int], title: str) -> None:
    pos = _positions()
    names: dict[int | str, str] = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
    for slot, (op, source) in enumerate(edges):
        target = slot // 2 + 2
        (x0, y0), (x1, y1) = pos[int(source)], pos[target]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "->", "color": _COLORS.get(op, "black"), "lw": 1.5,
            "connectionstyle": f"arc3,rad={0.15 if slot % 2 else -0.15}",
            "shrinkA": 14, "shrinkB": 14})
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + (0.04 if slot % 2 else -0.04), op, fontsize=7,
                ha="center", color=_COLORS.get(op, "black"))
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos["out"]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": "lightgray", "shrinkA": 14,
                                "shrinkB": 14})
    for key, (x, y) in pos.items():
        label = names.get(key, str(int(key) - 2) if isinstance(key, int) else str(key))
        ax.text(x, y, label, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "lightyellow" if isinstance(key, int) and key >= 2
                      else "lightblue", "ec": "black"})
    ax.set_title(title)
    ax.set_xlim(-0.5, STEPS + 1.7)
    ax.set_ylim(-0.1, 1.1)
    ax.axis("off")


def plot_genotype(genotype: Arch, path: Path) -> None:
    """Write both cells of `genotype` side by side to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    _draw_cell(axes[0], list(genotype["normal"]), list(genotype["normal_concat"]), "normal cell")
    _draw_cell(axes[1], list(genotype["reduce"]), list(genotype["reduce_concat"]),
               "reduction cell")
    fig.tight_layout()
    atomic_save_with(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
