"""`nas runs list|show`: what runs exist and what each holds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.artifacts import RunDir, list_run_names, stage_status
from nas.commands._common import JsonOption, RunsDirOption, console, resolve_runs_dir
from nas.errors import ArtifactError

app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)


def _row(root: Any, name: str) -> dict[str, Any]:
    """One run of the list; a damaged manifest is shown as such, not fatal to the list."""
    try:
        manifest = RunDir(root, name).manifest()
    except ArtifactError as exc:
        return {"name": name, "space": None, "created": None, "updated": None, "stages": {},
                "error": str(exc)}
    return {
        "name": name,
        "space": (manifest.get("space") or {}).get("name"),
        "created": manifest.get("created"),
        "updated": manifest.get("updated"),
        "stages": {k: stage_status(v) for k, v in manifest.get("stages", {}).items()},
    }


@app.command("list")
def list_runs(runs_dir: RunsDirOption = None, as_json: JsonOption = False) -> None:
    """List the runs in the runs folder with their stages."""
    root = resolve_runs_dir(runs_dir)
    rows = [_row(root, name) for name in list_run_names(root)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no runs in {root}")
        return
    table = Table(title=f"runs in {root}")
    for column in ("name", "space", "stages", "updated"):
        table.add_column(column, overflow="fold", no_wrap=column == "updated")
    for row in rows:
        assert isinstance(row["stages"], dict)
        ordered = sorted(row["stages"].items(), key=lambda kv: _pipeline_order((kv[0], {})))
        stages = ", ".join(f"{k}:{v}" for k, v in ordered) or "-"
        if "error" in row:
            stages = "[red]manifest unreadable[/red] (see `nas runs show`)"
        table.add_row(str(row["name"]), str(row["space"] or "-"), stages, _minute(row["updated"]))
    console.print(table)


@app.command("show")
def show_run(
    name: Annotated[str, typer.Argument(help="Run name (a folder under the runs folder).")],
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's manifest: stages, configs, seeds, versions and files."""
    run = RunDir(resolve_runs_dir(runs_dir), name).require()
    manifest = run.manifest()
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    console.print(f"[bold]{name}[/bold]  ({run.path})")
    console.print(f"created {manifest.get('created')}, updated {manifest.get('updated')}")
    if manifest.get("space"):
        console.print(f"space: {json.dumps(manifest['space'])}")
    if isinstance(manifest.get("source"), dict):  # weights made elsewhere (import-supernet)
        from nas.supernet.ofa_import import describe_source

        console.print(f"weights: {describe_source(manifest['source'])}", soft_wrap=True)
    table = Table(title="stages (pipeline order)")
    table.add_column("stage", no_wrap=True)
    table.add_column("status")
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("result", overflow="fold", ratio=1)  # folded, never cut with "..."
    for stage, info in sorted(manifest.get("stages", {}).items(), key=_pipeline_order):
        table.add_row(stage, _status(stage_status(info)),
                      _minute(info.get("started")),
                      _took(info), stage_result(stage, info.get("summary") or {}))
    console.print(table)
    files = sorted(
        str(p.relative_to(run.path))
        for p in run.path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(run.path).parts)
    )
    console.print("files: " + (", ".join(files) if files else "-"))


@app.command("plot")
def plot_run(
    name: Annotated[str, typer.Argument(help="Run name (a folder under the runs folder).")],
    runs_dir: RunsDirOption = None,
) -> None:
    """Redraw the run's training curves (curves.png beside each metrics.jsonl), also while it
    trains or after it was killed."""
    from nas.errors import ArtifactError
    from nas.train.curves import plot_run_curves

    run = RunDir(resolve_runs_dir(runs_dir), name).require()
    drawn = plot_run_curves(run, name=name)
    if not drawn:
        raise ArtifactError(f"run '{name}' has no training log with steps yet "
                            f"({run.supernet_dir / 'metrics.jsonl'}); train it first")
    for png in drawn:
        console.print(f"wrote {png}", soft_wrap=True)


# stages listed as the pipeline runs them; a stage's position is that of its prefix
_PIPELINE = ("train-supernet", "import-supernet", "train", "profile", "search", "export",
             "finetune")


def _pipeline_order(item: tuple[str, Any]) -> tuple[int, str]:
    stage, info = item
    rank = next((i for i, prefix in enumerate(_PIPELINE)
                 if stage == prefix or stage.startswith(prefix + "-")), len(_PIPELINE))
    return rank, str((info or {}).get("started") or "")


def _minute(iso: object) -> str:
    """`2026-12-05 16:45` of an ISO time (seconds and zone add width, not information)."""
    return str(iso or "-")[:16].replace("T", " ")


def _status(status: str) -> str:
    colour = {"done": "green", "running": "yellow", "interrupted": "red", "failed": "red"}
    return f"[{colour[status]}]{status}[/{colour[status]}]" if status in colour else status


def _took(info: dict[str, Any]) -> str:
    import datetime as dt

    try:
        seconds = (dt.datetime.fromisoformat(str(info["ended"]))
                   - dt.datetime.fromisoformat(str(info["started"]))).total_seconds()
    except (KeyError, TypeError, ValueError):
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def stage_result(stage: str, summary: dict[str, Any]) -> str:
    """A stage's main results in a line: accuracy, predictor quality, front size, export."""
    parts = []
    for role, metrics in (summary.get("val") or {}).items():
        if isinstance(metrics, dict) and metrics.get("top1") is not None:
            parts.append(f"{role} val top-1 {float(metrics['top1']):.2f}%")
    for key, text in (("val_acc", "val top-1 {:.2%}"), ("test_acc", "test top-1 {:.2%}")):
        if isinstance(summary.get(key), (int, float)):
            parts.append(text.format(summary[key]))
    if summary.get("genotype_string") or summary.get("genotype"):
        genotype = summary.get("genotype_string") or json.dumps(summary["genotype"])
        parts.append(f"genotype {genotype}")
    if summary.get("steps") is not None and stage.startswith(("train", "finetune")):
        parts.append(f"{summary['steps']} steps")
    if summary.get("chosen"):
        quality = summary.get("within10")
        parts.append(f"predictor {summary['chosen']}" + (
            f", {100 * float(quality):.0f}% within ±10%" if quality is not None else "")
            + (" (poor)" if summary.get("poor") else ""))
    if summary.get("front") is not None:
        parts.append(f"front of {summary['front']} from {summary.get('scored', '?')} scored")
    if summary.get("arch_id"):
        parts.append(f"{summary['arch_id']} -> {summary.get('out_dir', '?')}")
    return "; ".join(parts) or "-"


def register(root: typer.Typer) -> None:
    """Add `runs` (with its subcommands) to the root app."""
    root.add_typer(app, name="runs")
