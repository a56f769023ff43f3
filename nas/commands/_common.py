"""Shared CLI plumbing: consoles, the runs folder option, config from flags."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
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
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="When another process is writing the same stage of the run, wait for it to "
        "finish instead of failing.",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="Torch intra-op threads (default: torch's choice; on a busy shared CPU 1 is often "
        "fastest).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]


def set_threads(threads: int | None) -> None:
    """`--threads`: torch's intra-op threads for this process (None: unchanged)."""
    if threads is None:
        return
    if threads < 1:
        raise typer.BadParameter(f"expected --threads >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def option(help_text: str, *names: str, panel: str | None = None) -> Any:
    """A typer option whose help text states its default itself, shown in `panel`."""
    return typer.Option(*names, help=help_text, show_default=False, rich_help_panel=panel)


@contextlib.contextmanager
def resumable(command: str) -> Iterator[None]:
    """Ctrl-C (after the loop saved its checkpoint) ends with how to continue, exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/yellow]; continue from the last checkpoint "
                          f"with `{command}`", highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None


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
