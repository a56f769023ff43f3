"""The `nas` command line: a root typer app; each command lives in `nas/commands/`."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from nas.errors import NasError


class NasGroup(TyperGroup):
    """Shows a library `NasError` from any (sub)command as one red line and exits with 2.

    Unexpected exceptions are not caught here and keep their traceback.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NasError as exc:
            from nas.commands._common import err_console

            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=NasGroup,
    help="Hardware-aware neural architecture search: train a supernet, profile a device, "
    "search for subnets that fit it, export the chosen one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register_commands() -> None:
    from nas.commands import runs

    app.add_typer(runs.app, name="runs")


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
