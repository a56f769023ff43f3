"""Every command has help text, and so has every one of its options (walks the command tree)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(typer.main.get_command(app))


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "nas" for p, _ in COMMANDS])
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert (command.help or command.short_help or "").strip(), f"{path} has no help text"
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option" or param.name == "help":
            continue
        assert (param.help or "").strip(), f"option {param.opts} of {' '.join(path)} has no help"
