"""NaN and infinities for every float option of every command, and in every config file.

The options are enumerated from the CLI itself (typer's click tree) and the config dataclasses,
so an option added later is covered without touching this file.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import cli
from nas.search.problems import SearchConfig
from nas.train.config import TrainConfig
from nas.train.darts_eval import EvalTrainConfig
from nas.train.subnet import SubnetConfig
from tests.faults.conftest import assert_clean_failure

runner = CliRunner()


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.24 keeps the annotation
    if descriptor is not None:
        return descriptor.annotation
    return getattr(getattr(param, "type", None), "name", None)  # click: "float"


def _is_float(param: Any) -> bool:
    annotation = _annotation(param)
    return annotation is float or annotation == "float" or float in typing.get_args(annotation)


def _dummy(param: Any) -> list[str]:
    """Arguments that satisfy a required parameter (parsing is what is tested)."""
    annotation = _annotation(param)
    value = "1" if annotation in (int, "integer") else "x"
    if getattr(param, "param_type_name", "") == "argument":
        return [value]
    return [param.opts[0], value]


def float_options() -> list[tuple[tuple[str, ...], str, list[str]]]:
    """(command path, --option, the command's other required arguments) per float option."""
    found = []
    for path, command in _commands(typer.main.get_command(cli.app)):
        required = [arg for p in command.params if p.required for arg in _dummy(p)]
        for param in command.params:
            if _is_float(param) and getattr(param, "opts", None):
                found.append((path, param.opts[0], required))
    return found


FLOATS = float_options()


def test_the_cli_has_the_float_options_the_issue_names() -> None:
    names = {(" ".join(path), option) for path, option, _ in FLOATS}
    assert {("search", "--latency-max"), ("train-supernet", "--lr"),
            ("profile", "--measure-ms"), ("profile", "--budget-minutes")} <= names


# float() reads "NaN", "Infinity" and friends as these three: one case each is enough
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("path", "option", "required"), FLOATS,
                         ids=[f"{' '.join(p)} {o}" for p, o, _ in FLOATS])
def test_non_finite_float_option_is_refused(
    path: tuple[str, ...], option: str, required: list[str], value: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_RUNS_DIR", str(tmp_path / "runs"))
    result = runner.invoke(cli.app, [*path, *required, f"{option}={value}"])
    assert_clean_failure(result, mentions="expected a finite number")
    assert list(tmp_path.iterdir()) == []


CONFIGS = {
    "train-supernet": (TrainConfig, ["train-supernet", "--run", "x"]),
    "search": (SearchConfig, ["search", "--run", "x", "--device", "cpu"]),
    "train": (EvalTrainConfig, ["train", "--run", "x"]),
    "train-arch": (SubnetConfig, ["train", "--run", "x", "--space", "nb201", "--arch",
                                  "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"]),
}


def _float_fields(cls: type[Any]) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls)
            if hints[f.name] is float or float in typing.get_args(hints[f.name])]


CONFIG_CASES = [(command, field) for command, (cls, _) in CONFIGS.items()
                for field in _float_fields(cls)]


@pytest.mark.parametrize(("command", "field"), CONFIG_CASES,
                         ids=[f"{c}-{f}" for c, f in CONFIG_CASES])
def test_non_finite_number_in_a_config_file_is_refused(
    command: str, field: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"{field}: .nan\n")
    result = runner.invoke(cli.app, [*CONFIGS[command][1], "--config", str(config),
                                     "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="expected a finite number")
    assert not (tmp_path / "runs").exists()


def test_a_config_value_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: fast\n")
    result = runner.invoke(cli.app, ["train-supernet", "--run", "x", "--config", str(config),
                                     "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="--lr: expected a number, got 'fast'")


def test_imported_infinite_latency_is_refused(tmp_path: Path) -> None:
    measurements = tmp_path / "m.jsonl"
    measurements.write_text('{"arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|'
                            'none~2|", "latency_ms": Infinity}\n')
    result = runner.invoke(cli.app, ["profile", "import", str(measurements), "--device", "d",
                                     "--space", "nb201", "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="finite positive 'latency_ms'")
    assert not (tmp_path / "runs").exists()
