"""How a finished supernet training looks in the terminal (`nas train-supernet`, quickstart)."""

from __future__ import annotations

from rich.table import Table

from nas.artifacts import RunDir
from nas.train.supernet_run import TrainSummary


def summary_table(run: RunDir, summary: TrainSummary) -> Table:
    """One row per subnet evaluated at the end: val top-1 and loss, steps, time, speed."""
    note = "" if summary.completed else " (stopped early)"
    table = Table(title=f"supernet '{run.name}'{note}")
    for column in ("subnet", "val top-1", "val loss", "steps", "time", "images/s"):
        table.add_column(column, justify="right" if column != "subnet" else "left")
    rows: list[tuple[str, dict[str, float]]] = list(summary.val.items()) or [("-", {})]
    for role, metrics in rows:
        top1 = metrics.get("top1")
        table.add_row(
            role,
            "-" if top1 is None else f"{top1:.2f}%",
            "-" if metrics.get("loss") is None else f"{metrics['loss']:.3f}",
            str(summary.steps),
            f"{summary.seconds:.0f} s",
            f"{summary.images_per_s:.0f}",
        )
    return table


__all__ = ["summary_table"]
