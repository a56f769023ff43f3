"""Options shared by `nas profile` and its subcommands (bundle, import, predict)."""

from __future__ import annotations

from typing import Annotated

import typer

RunOption = Annotated[
    str | None, typer.Option("--run", help="Run whose space is profiled (RUNS_DIR/NAME).")
]
SpaceOption = Annotated[
    str | None, typer.Option("--space", help="Search space, when profiling without a run.")
]
ClassesOption = Annotated[
    int | None, typer.Option("--num-classes", help="Classes of the space (with --space).")
]
ImageSizeOption = Annotated[
    int | None, typer.Option("--image-size", help="Input side of the subnets (with --space).")
]
SpaceOptionsOption = Annotated[
    list[str] | None,
    typer.Option("--space-option", help="KEY=VALUE passed to the space (with --space), e.g. "
                 "init_channels=8 for darts; repeatable. Part of the profile's folder name.",
                 show_default=False),
]
PredictorOption = Annotated[
    str, typer.Option("--predictor", help="auto (best on held-out subnets), lut, ridge, "
                      "structural, residual, transfer or mlp.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the subnet sample and split.")]
TransferOption = Annotated[
    str | None,
    typer.Option("--transfer-from", help="A device profiled or imported before (same space): "
                 "its predictor is the prior of this one (a few dozen subnets suffice); with "
                 "bundle, it picks the --samples subnets most informative against it."),
]


__all__ = [
    "ClassesOption",
    "ImageSizeOption",
    "PredictorOption",
    "RunOption",
    "SeedOption",
    "SpaceOption",
    "SpaceOptionsOption",
    "TransferOption",
]
