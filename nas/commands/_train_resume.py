"""The options `nas train-supernet --resume` continues with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from nas.artifacts import RunDir
from nas.commands._common import explicit_params, resolve_config
from nas.config import build_config, check_keys, read_config_file
from nas.train.config import TrainConfig
from nas.train.supernet_run import saved_options


def resumed_config(run: RunDir, ctx: typer.Context, config_file: Path | None) -> TrainConfig:
    """`--resume` starts from the run's saved options; a config file and typed flags still win.

    So `nas train-supernet --run NAME --resume` continues a run without repeating its options,
    and an option that changes what is trained is then refused by the resume check.
    """
    values = saved_options(run)
    if values is None:
        return resolve_config(ctx, TrainConfig, config_file)  # train_run reports the error
    if config_file is not None:
        from_file = read_config_file(config_file)
        check_keys(from_file, TrainConfig, source=str(config_file))
        values.update(from_file)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values.update({k: v for k, v in explicit_params(ctx).items() if k in fields})
    return build_config(TrainConfig, overrides=values)
