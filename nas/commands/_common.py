"""Shared CLI plumbing: consoles, progress bars, the runs folder option, config from flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import progress
from rich.console import Console

from nas.config import build_config

console = Console()
err_console = Console(stderr=True)

C = TypeVar("C")

RunsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        help="Folder holding run folders (default: $NAS_RUNS_DIR, else ./runs).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML or YAML file of option values; flags given on the command line win.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]


def option(help_text: str, *names: str, panel: str | None = None) -> Any:
    """A typer option whose help text states its default itself, shown in `panel`."""
    return typer.Option(*names, help=help_text, show_default=False, rich_help_panel=panel)


def progress_bar(label: str, *fields: str, **options: Any) -> progress.Progress:
    """A rich bar: `label`, bar, done/total, one column per `fields` template, elapsed, left.

    `label` and `fields` are rich text templates (`{task.description}`,
    `{task.fields[NAME]}`); `options` go to `Progress` (console, transient, disable).
    """
    columns: list[progress.ProgressColumn] = [
        progress.TextColumn(label), progress.BarColumn(), progress.MofNCompleteColumn()
    ]
    columns += [progress.TextColumn(field) for field in fields]
    columns += [progress.TimeElapsedColumn(), progress.TimeRemainingColumn()]
    return progress.Progress(*columns, **options)


def resolve_runs_dir(runs_dir: Path | None) -> Path:
    """`--runs-dir`, else `$NAS_RUNS_DIR`, else `./runs`."""
    if runs_dir is not None:
        return runs_dir
    return Path(os.environ.get("NAS_RUNS_DIR", "runs"))


def explicit_params(ctx: typer.Context) -> dict[str, Any]:
    """The parameters the user typed (or set by env var), not those left at their defaults."""
    explicit = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        # compared by name: typer vendors click in recent releases, so the enum's class varies
        if getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT"):
            explicit[name] = value
    return explicit


def resolve_config(ctx: typer.Context, cls: type[C], config_file: Path | None) -> C:
    """Defaults < `--config FILE` < flags typed on the command line, for dataclass `cls`.

    Command parameters that are not fields of `cls` (such as `--run`) are ignored here.
    Defaults of the flags themselves are not applied over the file's values: a flag only wins
    when the user typed it.
    """
    import dataclasses

    fields = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    typed = {k: v for k, v in explicit_params(ctx).items() if k in fields}
    defaults = {
        k: v for k, v in ctx.params.items() if k in fields and k not in typed and v is not None
    }
    base = {**defaults}
    if config_file is not None:
        from nas.config import check_keys, read_config_file

        from_file = read_config_file(config_file)
        check_keys(from_file, cls, source=str(config_file))
        base.update(from_file)
    base.update(typed)
    return build_config(cls, overrides=base)
