"""How profiling looks in the terminal: a bar per phase, then the predictors' quality table.

Shared by `nas profile` and `nas quickstart`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nas.artifacts import RunLayout
from nas.commands._common import console, err_console
from nas.commands._progress import Bars
from nas.profile.pipeline import Prediction, Predictors, ProfileTarget
from nas.profile.session import Progress


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_table(report: dict[str, Any]) -> Table:
    """The quality report as a rich table (one row per predictor, then the noise floor)."""
    table = Table(title=f"latency predictors for '{report['device']}': {report['n_subnets']} "
                  f"subnets, {report['n_blocks']} blocks")
    for column in ("predictor", "±5%", "±10%", "MAPE", "RMSE ms", "Kendall τ", "note"):
        table.add_column(column, justify="left" if column in ("predictor", "note") else "right")
    threshold = report["poor_threshold_within10"]
    for kind, entry in report["predictors"].items():
        q = entry.get("holdout")
        chosen = " *" if kind == report["chosen"] else ""
        if q is None:
            note = entry.get("skipped") or "not validated (too few subnets)"
            table.add_row(kind + chosen, "-", "-", "-", "-", "-", f"[dim]{note}[/dim]")
            continue
        note = f"[red]poor (<{100 * threshold:.0f}% within ±10%)[/red]" if q["poor"] else ""
        if kind == "transfer" and report.get("transfer_from"):
            note = f"from '{report['transfer_from']}' {note}".rstrip()
        table.add_row(kind + chosen, _pct(q["within5"]), _pct(q["within10"]), f"{q['mape']:.2f}%",
                      f"{q['rmse_ms']:.3f}", _num(q["kendall_tau"]), note)
    noise = report.get("noise_floor") or {}
    if noise.get("n_pairs"):
        table.add_row("[dim]noise floor[/dim]", _pct(noise["within5"]), _pct(noise["within10"]),
                      f"{noise['mape']:.2f}%", "-", "-",
                      f"[dim]{noise['n_pairs']} subnets measured twice; median IQR "
                      f"{_pct(noise['median_rel_iqr'])}[/dim]")
    table.caption = (f"* chosen; {report['n_holdout']} held-out subnets, each predicted by a "
                     f"predictor fitted on {report['n_train']} others (cross-validation)")
    return table


class ProfileProgress:
    """A rich progress bar per phase: done/total, current ±10% estimate, time left."""

    def __init__(self, enabled: bool) -> None:
        self.tasks: dict[str, Any] = {}
        self.progress = Bars("[bold]{task.description}[/bold]", "±10%: {task.fields[estimate]}",
                             enabled=enabled, unit="measurements")

    def __enter__(self) -> ProfileProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, event: Progress) -> None:
        estimate = _pct(event.estimate_within10) if event.estimate_within10 is not None else "-"
        if event.phase not in self.tasks:
            self.tasks[event.phase] = self.progress.add_task(
                event.phase, total=event.total, estimate=estimate
            )
        self.progress.update(self.tasks[event.phase], completed=event.done, total=event.total,
                             estimate=estimate)


def show_predictors(fitted: Predictors, *, as_json: bool) -> None:
    """The quality report (with the warning) as JSON, or as a table and the folder."""
    if as_json:
        typer.echo(json.dumps({**fitted.report, "warning": fitted.warning}, indent=2,
                              sort_keys=True))
        return
    console.print(report_table(fitted.report))
    needed = fitted.report.get("needed")
    if needed:
        console.print(f"measurements: {needed['message']}")
    console.print(f"predictors: {RunLayout(fitted.root).predictors_dir}")
    if fitted.report.get("plot"):
        folder = RunLayout(fitted.root).predictor_dir(str(fitted.report["device"]))
        console.print(f"predicted vs measured: {folder / str(fitted.report['plot'])}",
                      soft_wrap=True)
    if fitted.warning:
        warn(fitted.warning)


def warn(text: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


def prediction_table(prediction: Prediction, device: str) -> Table:
    """Predicted latency, MACs and parameters of each subnet, in input order."""
    table = Table(title=f"predicted latency on '{device}' ({prediction.kind})")
    for column in ("#", "arch_id", "latency ms", "MMACs", "params (M)"):
        table.add_column(column, justify="right")
    for number, row in enumerate(prediction.rows, start=1):
        table.add_row(str(number), str(row["arch_id"]), f"{row['latency_ms']:.3f}",
                      f"{row['macs'] / 1e6:.1f}", f"{row['params'] / 1e6:.2f}")
    return table


def bundle_summary(
    out: Path, manifest: dict[str, Any], target: ProfileTarget, transfer_from: str | None
) -> str:
    """What the bundle holds; what to run on the device, then here (same space options)."""
    flags = [f"--run {target.run}"] if target.run else [
        f"{flag} {value}" for flag, value in (
            ("--space", target.space), ("--num-classes", target.num_classes),
            ("--image-size", target.image_size)) if value is not None
    ] + [f"--space-option '{option}'" for option in target.space_options]
    if transfer_from:
        flags.append(f"--transfer-from {transfer_from}")
    return (f"bundle: {out} ({manifest['n_subnets']} subnets, {manifest['n_blocks']} blocks)\n"
            f"on the device: python {out.name}/run_bundle.py {out.name} --out results.jsonl"
            f"; then here: nas profile import results.jsonl --device NAME {' '.join(flags)}")
