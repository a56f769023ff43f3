"""`nas runs list|show`: what runs exist and what each holds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.artifacts import RunDir, list_run_names
from nas.commands._common import JsonOption, RunsDirOption, console, resolve_runs_dir

app = typer.Typer(help="List and inspect run folders.", no_args_is_help=True)


def _stage_summary(manifest: dict[str, Any]) -> str:
    stages = manifest.get("stages", {})
    return ", ".join(f"{name}:{info.get('status', '?')}" for name, info in stages.items()) or "-"


@app.command("list")
def list_runs(runs_dir: RunsDirOption = None, as_json: JsonOption = False) -> None:
    """List the runs in the runs folder with their stages."""
    root = resolve_runs_dir(runs_dir)
    rows = []
    for name in list_run_names(root):
        manifest = RunDir(root, name).manifest()
        rows.append(
            {
                "name": name,
                "space": (manifest.get("space") or {}).get("name"),
                "created": manifest.get("created"),
                "updated": manifest.get("updated"),
                "stages": {k: v.get("status") for k, v in manifest.get("stages", {}).items()},
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no runs in {root}")
        return
    table = Table(title=f"runs in {root}")
    for column in ("name", "space", "stages", "updated"):
        table.add_column(column)
    for row in rows:
        assert isinstance(row["stages"], dict)
        stages = ", ".join(f"{k}:{v}" for k, v in row["stages"].items()) or "-"
        table.add_row(str(row["name"]), str(row["space"] or "-"), stages, str(row["updated"]))
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
    table = Table(title="stages")
    for column in ("stage", "status", "started", "ended", "seed", "device", "git"):
        table.add_column(column)
    for stage, info in manifest.get("stages", {}).items():
        env = info.get("environment", {})
        table.add_row(
            stage,
            str(info.get("status")),
            str(info.get("started")),
            str(info.get("ended")),
            str(info.get("seed")),
            str(info.get("device")),
            str(env.get("git_revision"))[:12],
        )
    console.print(table)
    files = sorted(
        str(p.relative_to(run.path))
        for p in run.path.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    console.print("files: " + (", ".join(files) if files else "-"))


def register(root: typer.Typer) -> None:
    """Add `runs` (with its subcommands) to the root app."""
    root.add_typer(app, name="runs")
