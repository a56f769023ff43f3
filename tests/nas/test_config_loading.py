from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from nas.commands._common import ConfigOption, resolve_config
from nas.config import build_config, read_config_file
from nas.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    epochs: int = 5
    learning_rate: float = 0.1
    dataset: str = "digits"


def test_file_overrides_defaults_and_flags_override_file(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("epochs = 7\nlearning-rate = 0.5\n")
    cfg = build_config(ToyConfig, config_file=toml, overrides={"learning_rate": 0.01})
    assert cfg == ToyConfig(epochs=7, learning_rate=0.01, dataset="digits")


def test_yaml_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\ndataset: cifar10\n")
    assert read_config_file(path) == {"epochs": 3, "dataset": "cifar10"}


def test_unknown_key_names_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match="unknown option 'epoch'; did you mean 'epochs'"):
        build_config(ToyConfig, config_file=path)


@pytest.mark.parametrize("text", ["epochs: [1,\n", "- 1\n- 2\n"])
def test_malformed_files_are_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)):
        build_config(ToyConfig, config_file=path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(ToyConfig, config_file=tmp_path / "nope.toml")


def _toy_app(seen: list[ToyConfig]) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def train(
        ctx: typer.Context,
        epochs: Annotated[int, typer.Option(help="epochs")] = 5,
        learning_rate: Annotated[float, typer.Option(help="lr")] = 0.1,
        config: ConfigOption = None,
    ) -> None:
        seen.append(resolve_config(ctx, ToyConfig, config))

    return app


def test_cli_precedence_defaults_file_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("epochs = 9\nlearning_rate = 0.3\ndataset = 'cifar10'\n")
    seen: list[ToyConfig] = []
    app = _toy_app(seen)
    runner = CliRunner()
    assert runner.invoke(app, []).exit_code == 0
    assert runner.invoke(app, ["--config", str(path)]).exit_code == 0
    # a flag typed equal to its default still wins over the file
    assert runner.invoke(app, ["--config", str(path), "--epochs", "5"]).exit_code == 0
    assert seen == [
        ToyConfig(),
        ToyConfig(epochs=9, learning_rate=0.3, dataset="cifar10"),
        ToyConfig(epochs=5, learning_rate=0.3, dataset="cifar10"),
    ]
