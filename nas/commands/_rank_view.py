"""How a ranking looks in the terminal: a progress bar (log lines when not a terminal), then
one row per scorer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.table import Table

from nas.commands._common import console, err_console
from nas.commands._progress import Bars
from nas.rank.pipeline import RankObserver, RankResult


class RichRankObserver(RankObserver):
    """A bar on stderr in a terminal; otherwise a log line per tenth of the subnets and per
    stand-alone training. `quiet` shows nothing (`--json` keeps its output clean)."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet, self.live = quiet, err_console.is_terminal
        self.progress: Bars | None = None
        self.task: Any = None
        self.total = self.count = 0
        self.training_now: str | None = None  # the subnet training alone (log lines)

    def started(self, total: int, done: int) -> None:
        self.total, self.count = total, done
        if self.quiet:
            return
        if not self.live:
            err_console.print(f"scoring {total} subnets ({done} already in scores.jsonl)")
            return
        self.progress = Bars("[bold]rank[/bold]", "{task.fields[note]}", console=err_console,
                             transient=True, estimate=False)
        self.task = self.progress.add_task("rank", total=total, note="")
        self.progress.update(self.task, completed=done)
        self.progress.start()

    def training(self, arch_id: str, step: int, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, note=f"training {arch_id} alone: {step}/{total}")
            return
        if self.quiet:
            return
        if arch_id != self.training_now:
            self.training_now = arch_id
            err_console.print(f"training {arch_id} alone from step {step} of {total}")
        if step == total:
            err_console.print(f"trained {arch_id} alone ({total} steps)")

    def scored(self, arch_id: str, fresh: bool) -> None:
        self.count += int(fresh)
        if self.progress is not None:
            self.progress.update(self.task, advance=int(fresh), note="")
        elif not self.quiet and fresh and self.count % max(1, self.total // 10) == 0:
            err_console.print(f"scored {self.count}/{self.total} subnets")

    def stopped(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def show_ranking(result: RankResult) -> None:
    """The table of scorers, then the files written."""
    report = result.report
    truth = report["truth"]
    against = (f"{truth['source']} ({truth['column']})" if "source" in truth
               else f"{truth['standalone']} subnets trained alone")
    title = f"{report['n']} subnets ranked against {against}"
    console.print(ranking_table(title, report))
    n, computed = report["n"], result.computed
    fresh = ("all scored now" if computed == n else
             f"{computed or 'none'} scored now, {n - computed} from scores.jsonl")
    console.print(f"{fresh}; wrote {result.folder}/report.json, subnets.csv")
    console.print(f"scatter: {result.scatter}")


def ranking_table(title: str, report: Mapping[str, Any]) -> Table:
    """scorer | Kendall tau [interval] | Spearman | precision top 10% | tau top 10% | s/subnet."""
    percent = round(100 * float(report["top_fraction"]))
    table = Table(title=title)
    for column in ("scorer", "Kendall tau [95%]", "Spearman", f"precision top {percent}%",
                   f"tau top {percent}%", "s / subnet"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    seconds = report["seconds_per_subnet"]
    for name, metrics in report["scores"].items():
        tau = metrics["kendall_tau"]
        table.add_row(
            name,
            _value(tau["value"]) + _interval(tau),
            _value(metrics["spearman"]["value"]),
            _value(metrics[f"precision_top{percent}"]["value"]),
            _value(metrics[f"tau_top{percent}"]["value"]),
            f"{seconds.get(name, 0.0):.3g}",
        )
    return table


def _value(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _interval(estimate: Mapping[str, float | None]) -> str:
    low, high = estimate["low"], estimate["high"]
    return "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
