"""The `nas` command line: a root typer app; each command lives in `nas/commands/`."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from nas.errors import NasError

# typer vendors click in recent releases, so click's UsageError is reached through the
# public BadParameter (its subclass) instead of importing click.
_UsageError: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError"
)


def _fail(message: str) -> typer.Exit:
    from nas.commands._common import err_console

    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


class NasGroup(TyperGroup):
    """Shows user errors from any (sub)command as one red line and exits with 2.

    User errors are the library's `NasError`s and bad command lines (unknown option, bad
    value). Unexpected exceptions are not caught here and keep their traceback.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NasError as exc:
            raise _fail(str(exc)) from None
        except _UsageError as exc:
            failed_ctx = getattr(exc, "ctx", None)
            command = failed_ctx.command_path if failed_ctx is not None else "nas"
            text = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            raise _fail(f"{text} (see '{command} --help')") from None


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
    """Register each command module in pipeline order (the order `nas --help` lists them in)."""
    from nas.commands import (
        dashboard,
        export,
        finetune,
        import_supernet,
        profile,
        quickstart,
        rank,
        runs,
        search,
        space,
        train,
        train_eval,
    )
    from nas.commands import eval as evaluate  # (not shadowing the builtin)

    space.register(app)
    # eval and finetune have no register() and train's also adds eval: their command
    # functions are added here, so that no module registers another module's command
    app.command("train-supernet")(train.train_supernet)
    app.command("eval")(evaluate.eval_subnet)
    import_supernet.register(app)  # import-supernet ofa (a supernet instead of training one)
    profile.register(app)
    search.register(app)
    export.register(app)
    app.command("finetune")(finetune.finetune_command)
    quickstart.register(app)
    train_eval.register(app)  # train (one network alone: a DARTS genotype or any subnet)
    rank.register(app)  # rank (does the supernet rank subnets right?)
    runs.register(app)
    dashboard.register(app)  # a run's search study in optuna-dashboard


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
