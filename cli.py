"""The `nas` command line: a root typer app; each command lives in `nas/commands/`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from nas.artifacts import disk_failure
from nas.config import check_number
from nas.errors import NasError

# typer vendors click in recent releases, so click's UsageError is reached through the
# public BadParameter (its subclass) instead of importing click.
_UsageError: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError"
)


# commands that split their work across the processes of a torchrun job; any other would run
# as N identical copies writing the same files
_DISTRIBUTED_COMMANDS = frozenset({"train-supernet"})


def _fail(message: str) -> typer.Exit:
    from nas.commands._common import err_console

    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _finite_numbers(param: Any) -> None:
    """Make `param` refuse NaN and infinities (`float("nan")` parses), through the one check
    configs use as well (`nas.config.check_number`)."""
    original = param.callback

    def callback(ctx: Any, param_: Any, value: Any) -> Any:
        if original is not None:
            value = original(ctx, param_, value)
        check_number(value, str(param_.name))
        return value

    param.callback = callback


def _commands(group: Any) -> Iterator[Any]:
    """`group` and every command below it."""
    yield group
    for command in getattr(group, "commands", {}).values():
        yield from _commands(command)


class NasGroup(TyperGroup):
    """Shows user errors from any (sub)command as one red line and exits with 2.

    User errors are the library's `NasError`s, bad command lines (unknown option, bad value,
    NaN or infinity for a number: every option of every command is checked here, so new
    options are covered) and writes the disk refused (full, read-only, no permission; every
    write is atomic, so nothing earlier is lost). Unexpected exceptions are not caught here
    and keep their traceback.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in _commands(self):
            for param in command.params:
                _finite_numbers(param)

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
        except Exception as exc:
            reason = disk_failure(exc)
            if reason is None:
                raise
            raise _fail(reason) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        world = os.environ.get("WORLD_SIZE", "1")
        if name not in _DISTRIBUTED_COMMANDS and world.isdigit() and int(world) > 1:
            raise NasError(f"expected `nas train-supernet` under torchrun, got `nas {name}` "
                           f"(WORLD_SIZE={world}), which would run as {world} copies; run it "
                           "as one process")
        return name, command, rest


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
