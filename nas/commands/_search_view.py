"""How a search looks in the terminal: a progress bar per device, then its front as a table.

Shared by `nas search` and `nas quickstart`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from nas.arch import canonical_json
from nas.commands._common import console, err_console
from nas.commands._progress import Bars
from nas.search.base import Candidate, Constraint, Objective
from nas.search.output import measured_over
from nas.search.pipeline import DeviceSearch, SearchObserver


class RichSearchObserver(SearchObserver):
    """Draws each device's progress (stderr) and prints its front; `quiet` keeps stdout clean
    for `--json` (no bar, no tables, no warnings)."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.progress: Bars | None = None
        self.task: Any = None
        self.new = 0

    def note(self, text: str) -> None:
        if not self.quiet:
            console.print(text, highlight=False)

    def warning(self, text: str) -> None:
        if not self.quiet:
            err_console.print(f"[yellow]warning:[/yellow] {text}")

    def started(self, tag: str, algorithm: str, budget: int) -> None:
        if self.quiet:
            return
        label = f"{algorithm} {tag}"
        self.progress = Bars(
            f"[bold]{label}[/bold]",
            "new {task.fields[new]}",
            console=err_console,
            transient=True,  # a failed search then ends with its one-line error only
            unit="subnets",
        )
        self.new = 0
        self.task = self.progress.add_task(label, total=budget, new=0)
        self.progress.start()

    def scored(self, candidate: Candidate) -> None:
        self.new += 1  # counted as it happens: a generation's batch is used only at its end
        if self.progress is not None:
            self.progress.update(self.task, advance=1, new=self.new)

    def used(self, candidate: Candidate, fresh: bool) -> None:
        if self.progress is not None and not fresh:  # from the study: never `scored`
            self.progress.update(self.task, advance=1, new=self.new)

    def stopped(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def finished(self, search: DeviceSearch) -> None:
        if not self.quiet:
            show_search(search)


def show_search(search: DeviceSearch) -> None:
    """Measurement note, what the search did, the front as a table (each member's whole
    architecture below it), the files written."""
    result, device = search.result, search.problem.device
    if search.note:
        console.print(f"[dim]{search.note}[/dim]")
    error = search.prediction_error()
    if error is not None:
        console.print(
            f"front measured on this machine ({device}): predicted latency is off by "
            f"{100 * error[0]:.1f}% (median), {100 * error[1]:.1f}% (max)"
        )
    scored = len(result.history)
    console.print(
        f"{search.algorithm}: scored {scored} subnets ("
        + (
            f"{result.new_evaluations} new, the rest from the study"
            if result.new_evaluations < scored
            else "all new"
        )
        + f") in {result.seconds:.1f} s; {result.rejected} rejected before scoring"
        + (f"; {result.screened} skipped by the accuracy predictor" if result.screened else "")
    )
    title = (
        f"Pareto front: {search.run} / {search.tag} ({len(result.front)} of {scored} scored, "
        f"{result.rejected} rejected before scoring)"
    )
    console.print(front_table(title, result.front, search.problem.objectives, search.measured,
                              search.problem.constraints))
    for index, candidate in enumerate(result.front):  # whole, below: a table would cut them
        console.print(f"#{index} {candidate.arch_id}: {canonical_json(candidate.arch)}",
                      soft_wrap=True, highlight=False)
    over = [c for c in result.front if c.arch_id in search.measured
            and measured_over(search.measured[c.arch_id], search.problem.constraints)]
    if over:
        console.print(f"[yellow]{len(over)} front member(s) measured over the latency budget on "
                      "this machine[/yellow] (marked 'over'; `nas export --pick best` skips them)")
    console.print(
        f"wrote {search.out}/pareto.json, pareto.csv, trials.jsonl"
        + (", pareto.png, hypervolume.png" if search.plotted else "")
    )


def front_table(
    title: str, front: list[Candidate], objectives: list[Objective], measured: dict[str, float],
    constraints: Sequence[Constraint] = (),
) -> Table:
    table = Table(title=title)
    metrics = [o.name for o in objectives] + [
        m
        for m in ("latency_ms", "macs", "params")
        if front and m in front[0].values and m not in {o.name for o in objectives}
    ]
    table.add_column("#", justify="right")
    table.add_column("arch_id", no_wrap=True, min_width=12)  # whole: `--pick` users copy it
    for column in (*metrics, *(["measured ms"] if measured else [])):
        table.add_column(column, justify="right", overflow="fold")
    for index, candidate in enumerate(front):
        cells = [str(index), candidate.arch_id]
        cells += [_fmt(m, candidate.values.get(m)) for m in metrics]
        if measured:
            value = measured.get(candidate.arch_id)
            over = value is not None and measured_over(value, constraints)
            cells.append(_fmt("latency_ms", value) + (" [red]over[/red]" if over else ""))
        table.add_row(*cells)
    return table


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in ("macs", "params"):
        return f"{value / 1e6:.2f}M"
    return f"{value:.3f}" if metric.startswith("latency") else f"{value:.4g}"
