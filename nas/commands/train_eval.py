"""`nas train`: train one network alone into `runs/NAME/train/`: a DARTS genotype's evaluation
network (`--genotype`, the DARTS recipe) or any subnet of any space (`--arch`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from nas.artifacts import RunDir
from nas.commands._common import (
    ConfigOption,
    RunsDirOption,
    ThreadsOption,
    WaitOption,
    console,
    explicit_params,
    option,
    resolve_config,
    resolve_runs_dir,
    resumable,
    set_threads,
)
from nas.commands._progress import TrainProgress
from nas.errors import ConfigError
from nas.train.darts_eval import EvalTrainConfig, train_genotype
from nas.train.subnet import SubnetConfig, train_arch

_D = EvalTrainConfig()
_S = SubnetConfig()
_GENOTYPE = "DARTS genotype (--genotype) only"


def _check_options(ctx: typer.Context, chosen: type[Any], other: type[Any]) -> None:
    """Refuse a typed option that only the other kind of training reads."""
    own = {f.name for f in dataclasses.fields(chosen)}
    foreign = sorted(({f.name for f in dataclasses.fields(other)} - own) & set(
        explicit_params(ctx)))
    if foreign:
        flag = "--space-option" if foreign[0] == "space_options" else \
            "--" + foreign[0].replace("_", "-")
        which = "--arch" if chosen is SubnetConfig else "--genotype"
        raise ConfigError(f"{flag}: not an option of {which} training; drop it")


def train(
    ctx: typer.Context,
    run: Annotated[str, typer.Option("--run", help="Run name: artifacts go to RUNS_DIR/NAME/.")],
    genotype: Annotated[str | None, option(
        "Genotype: a published name (DARTS_V2, PC_DARTS, ...), a genotype.json from a search, "
        "a file with the DARTS repository's Genotype(...) text, or inline text "
        f"(default: {_D.genotype}).")] = None,
    arch: Annotated[str | None, option(
        "Subnet of --space to train instead of a genotype: max, min, inline JSON or a JSON "
        "file (SGD + cosine, label smoothing).")] = None,
    space: Annotated[str | None, option(f"With --arch: search space (default: {_S.space}).")]
    = None,
    space_options: Annotated[list[str] | None, typer.Option(
        "--space-option", help="With --arch: KEY=VALUE passed to the space (e.g. channels=8 "
        "for nb201); repeatable.", show_default=False)] = None,
    dataset: Annotated[str | None, option(f"Dataset (default: {_D.dataset}).")] = None,
    data_dir: Annotated[str | None, option("Folder of the dataset files.")] = None,
    image_size: Annotated[int | None, option(f"Image side (default: {_D.image_size}).")] = None,
    init_channels: Annotated[int | None, option(
        f"Channels of the first cells (default: {_D.init_channels}).", panel=_GENOTYPE)] = None,
    layers: Annotated[int | None, option(
        f"Number of cells (default: {_D.layers}).", panel=_GENOTYPE)] = None,
    epochs: Annotated[int | None, option(
        f"Epochs (default: {_D.epochs}, DARTS trains 600; --arch: {_S.epochs}).")] = None,
    batch_size: Annotated[int | None, option(
        f"Batch size (default: {_D.batch_size}; --arch: {_S.batch_size}).")] = None,
    lr: Annotated[float | None, option(
        f"Initial learning rate (default: {_D.lr}; --arch: {_S.lr}).")] = None,
    weight_decay: Annotated[float | None, option(
        f"Weight decay (default: {_D.weight_decay}; --arch: {_S.weight_decay}).")] = None,
    label_smoothing: Annotated[float | None, option(
        f"With --arch: label smoothing (default: {_S.label_smoothing}).")] = None,
    drop_path: Annotated[float | None, option(
        f"Final drop-path probability (default: {_D.drop_path}).", panel=_GENOTYPE)] = None,
    cutout: Annotated[int | None, option(
        f"Cutout square side, 0 = off (default: {_D.cutout}).", panel=_GENOTYPE)] = None,
    auxiliary: Annotated[bool | None, typer.Option(
        "--auxiliary/--no-auxiliary", help="Auxiliary head (weight --auxiliary-weight).",
        show_default=False, rich_help_panel=_GENOTYPE)] = None,
    auxiliary_weight: Annotated[float | None, option(
        f"Auxiliary loss weight (default: {_D.auxiliary_weight}).", panel=_GENOTYPE)] = None,
    seed: Annotated[int | None, option(f"Seed (default: {_D.seed}).")] = None,
    device: Annotated[str | None, option(f"Torch device (default: {_D.device}).")] = None,
    max_steps: Annotated[int | None, option("Stop after this many steps (quick runs).")] = None,
    config: ConfigOption = None,
    runs_dir: RunsDirOption = None,
    checkpoint_minutes: Annotated[float | None, option(
        "Also checkpoint when this many minutes passed since the last; Ctrl-C and SIGTERM "
        f"save one too (default: {_D.checkpoint_minutes:g}).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint.")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    threads: ThreadsOption = None,
    wait: WaitOption = False,
) -> None:
    """Train one network from scratch: a DARTS genotype, or any subnet with --arch.

    A genotype trains as DARTS' evaluation network (cutout, drop-path, auxiliary head); --arch
    takes a subnet of any space.
    """
    if arch and genotype:
        raise ConfigError("expected --genotype G or --arch CONFIG, got both")
    kind, other = (SubnetConfig, EvalTrainConfig) if arch else (EvalTrainConfig, SubnetConfig)
    _check_options(ctx, kind, other)
    run_dir = RunDir(resolve_runs_dir(runs_dir), run)
    set_threads(threads)
    again = f"nas train --run {run} " + (f"--arch {arch}" if arch else f"--genotype {genotype}")
    with TrainProgress(not quiet) as progress, resumable(f"{again} ... --resume"):
        if arch:
            summary = train_arch(resolve_config(ctx, SubnetConfig, config), run_dir,
                                 resume=resume, on_step=progress.update, wait=wait)
        else:
            summary = train_genotype(resolve_config(ctx, EvalTrainConfig, config), run_dir,
                                     resume=resume, on_step=progress.update, wait=wait)
    console.print(
        f"[bold]{run}[/bold]: {summary['steps']} steps, val top-1 {100 * summary['val_acc']:.2f}%"
        f", test top-1 {100 * summary['test_acc']:.2f}%, {summary['params']:,} params, "
        f"{summary['macs']:,} MACs" + ("" if summary["completed"] else " (stopped early)"),
        highlight=False,
    )
    console.print(f"weights: {run_dir.trained_weights}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `nas train` to the root app."""
    app.command("train")(train)
