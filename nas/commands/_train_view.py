"""How a finished supernet training looks in the terminal (`nas train-supernet`, quickstart)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nas.artifacts import RunDir
from nas.supernet.few_shot import FEW_SHOT_FILE
from nas.supernet.weights import weights_path
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



def show_summary(console: Console, run: RunDir, summary: TrainSummary) -> None:
    """The summary table, then where the run's results are."""
    console.print(summary_table(run, summary))
    if "arch" in summary.details:
        console.print(f"found cell: {summary.details['arch']}")
    # a once-for-all run ends in weights, a DARTS-family search in a cell
    for label, path in (("weights", weights_path(run)), ("arch", run.sub("arch.json")),
                        ("genotype", run.sub("genotype.json")),
                        ("few-shot split", run.supernet_dir / FEW_SHOT_FILE)):
        if path.is_file():
            console.print(f"{label}: {path}", soft_wrap=True)
    if summary.details.get("genotype_string"):  # whole: users paste it into `nas train`
        console.print(f"genotype: {summary.details['genotype_string']}", soft_wrap=True)


__all__ = ["show_summary", "summary_table"]
