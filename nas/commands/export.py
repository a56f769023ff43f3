"""`nas export`: write the chosen subnet as a deployable model (see `nas.export`).

`print_export` is also how `nas finetune` and `nas quickstart` show their export.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from nas.artifacts import RunDir
from nas.commands._common import (
    JsonOption,
    RunsDirOption,
    ThreadsOption,
    WaitOption,
    console,
    resolve_runs_dir,
    set_threads,
)

PICK_HELP = (
    "Which subnet: 'best' (highest top-1 on the search's front that meets its constraints), "
    "an INDEX into the front, 'latency<=MS' (most accurate within MS on --device), or a subnet "
    "config as inline JSON or a JSON file (canonical or Once-for-All ks/e/d format)."
)


def export_command(
    run: Annotated[str, typer.Option("--run", help="Run with a trained supernet.",
                                     show_default=False)],
    pick: Annotated[str, typer.Option("--pick", help=PICK_HELP)] = "best",
    search: Annotated[str | None, typer.Option(
        "--search", help="Search tag whose Pareto front to pick from (default: the newest).",
        show_default=False)] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="Device that 'latency<=MS' refers to (default: the search's).",
        show_default=False)] = None,
    formats: Annotated[str, typer.Option(
        "--format", help="Comma-separated formats: pytorch (safetensors + arch.json), "
        "torchscript (model.pt), onnx (model.onnx). Or 'ofa' alone: the whole supernet as "
        "Once-for-All's checkpoint, for OFA's own tools (ofa-mbv3 / ofa-resnet50 runs).")
    ] = "pytorch,torchscript,onnx",
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Export folder, anywhere (default: RUNS_DIR/NAME/export/ARCH_ID/, "
        "for --format ofa RUNS_DIR/NAME/export/ofa/).", show_default=False)] = None,
    calib_batches: Annotated[int | None, typer.Option(
        "--calib-batches", help="Training batches for BN recalibration (default: the run's "
        "bn_calibration_batches).", show_default=False)] = None,
    threads: ThreadsOption = None,
    recalibrate: Annotated[bool, typer.Option(
        "--bn-recalibration/--no-bn-recalibration", help="Re-estimate the subnet's BN "
        "statistics on training data, or keep the supernet's stored (trained or imported) "
        "ones, as OFA's get_active_subnet(preserve_weight=True) does.")] = True,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
    wait: WaitOption = False,
) -> None:
    """Export a subnet as a standalone model checked against the supernet, or --format ofa.

    The subnet's BN statistics are recalibrated unless --no-bn-recalibration; with --format ofa
    the whole supernet is written as a Once-for-All checkpoint.
    """
    from nas.commands._export_ofa import calibration_batches, export_ofa, wants_ofa
    from nas.export.formats import parse_formats
    from nas.export.from_run import export_from_run

    # compute only: latency is timed with each device's profiled threads whatever this is
    set_threads(threads)
    if wants_ofa(formats):
        export_ofa(
            RunDir(resolve_runs_dir(runs_dir), run).require(), out=out, as_json=as_json,
            argv=sys.argv, subnet_options={
                "--pick": pick != "best", "--search": search, "--device": device,
                "--calib-batches": calib_batches is not None,
                "--no-bn-recalibration": not recalibrate})
        return
    calib_batches = calibration_batches(calib_batches, recalibrate)
    chosen_formats = parse_formats(formats)  # bad --format fails before any loading
    the_run = RunDir(resolve_runs_dir(runs_dir), run).require()
    result = export_from_run(
        the_run, pick_rule=pick, search_tag=search, device=device, formats=chosen_formats,
        out_dir=out, calib_batches=calib_batches, argv=sys.argv, wait=wait,
    )
    metrics = result.report.metrics
    if as_json:
        typer.echo(json.dumps(metrics, indent=2, sort_keys=True, default=str))
        return
    print_export(metrics, result.report.out_dir, result.pick.reason)


def print_export(metrics: dict[str, Any], out_dir: Path, reason: str) -> None:
    """The export summary: choice, accuracy, size, parity per format, latency, files."""
    acc, cx = metrics["accuracy"], metrics["complexity"]
    console.print(f"[bold]exported subnet {metrics['arch_id']}[/bold] ({reason})")
    console.print(f"  {metrics['summary']}", soft_wrap=True)
    macs = cx.get("macs")
    console.print(
        f"  val top-1 {_pct(acc['val_top1'])}, test top-1 {_pct(acc['test_top1'])}, "
        f"{cx['params'] / 1e6:.2f} M params"
        + (f", {macs / 1e6:.1f} M MACs" if isinstance(macs, (int, float)) else "")
    )
    # no vertical rules: 80 columns then hold every cell whole but the file name
    table = Table(title="parity of the written files with the source model (validation data)",
                  box=box.SIMPLE_HEAD)
    # at 80 columns: short cells kept whole, the file name folded, the form wrapped at words
    for column in ("format", "file", "form", "|diff|", "limit", "top-1", "ok"):
        table.add_column(column, overflow="fold" if column == "file" else "ellipsis",
                         no_wrap=column not in ("file", "form"),
                         min_width=len("channels-last,") if column == "form" else None)
    deploy = metrics.get("deploy") or {}
    for name, p in metrics["parity"].items():
        form = ((deploy.get(name) or {}).get("form") or {}).get("label", "as stored")
        table.add_row(
            name, metrics["files"][name], form, f"{p['max_abs_diff']:.1e}",
            f"{p.get('allowed', p['tolerance']):.1e}",
            f"{p['val_correct']}/{p['val_total']}", "yes" if p["passed"] else "[red]NO[/red]",
        )
    console.print(table)
    latency = metrics["latency"]
    for device, stats in (latency.get("measured") or {}).items():
        if "median_ms" in stats:
            predicted = (latency.get("predicted") or {}).get(device)
            note = f" (predicted {predicted:.3f} ms)" if predicted is not None else ""
            console.print(f"  latency on {device}, batch 1: {stats['median_ms']:.3f} ms{note}")
    # soft wrap: the terminal wraps long paths, so they stay whole when copied
    console.print(f"wrote {out_dir}/ (model card: {out_dir / 'model_card.md'})", soft_wrap=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def register(app: typer.Typer) -> None:
    """Add `export` to the root app."""
    app.command("export")(export_command)


__all__ = ["export_command", "print_export", "register"]
