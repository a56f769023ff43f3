"""The profile report's picture: held-out predicted latency against measured latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.artifacts import atomic_save_with

PLOT = "predicted_vs_measured.png"


def plot_predicted_vs_measured(
    path: Path, measured: np.ndarray, predicted: np.ndarray, *, title: str, within10: float
) -> None:
    """PNG: one point per subnet (predicted by a predictor that never saw it), the diagonal
    and the +-10% band the quality report counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=110)
    low = float(min(measured.min(), predicted.min())) * 0.9
    high = float(max(measured.max(), predicted.max())) * 1.1
    line = np.array([low, high])
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15,
                    label="within ±10%")
    ax.plot(line, line, color="tab:green", linewidth=1)
    inside = np.abs(predicted - measured) <= 0.1 * measured
    ax.scatter(measured[inside], predicted[inside], s=14, color="tab:blue",
               label=f"held-out subnets ({100 * within10:.0f}% within ±10%)")
    ax.scatter(measured[~inside], predicted[~inside], s=14, color="tab:red", marker="x",
               label="off by more than 10%")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    atomic_save_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


__all__ = ["PLOT", "plot_predicted_vs_measured"]
