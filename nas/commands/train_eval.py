"""`nas train --genotype G`: train a DARTS genotype's evaluation network from scratch."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nas.artifacts import RunDir
from nas.commands._common import (
    ConfigOption,
    RunsDirOption,
    ThreadsOption,
    console,
    resolve_config,
    resolve_runs_dir,
    resumable,
    set_threads,
)
from nas.commands._progress import TrainProgress
from nas.train.darts_eval import EvalTrainConfig, train_genotype

_D = EvalTrainConfig()


def _opt(help_text: str) -> Any:
    return typer.Option(help=help_text, show_default=False)


def train(
    ctx: typer.Context,
    run: Annotated[str, typer.Option("--run", help="Run name: artifacts go to RUNS_DIR/NAME/.")],
    genotype: Annotated[str | None, _opt(
        "Genotype: a published name (DARTS_V2, PC_DARTS, ...), a genotype.json from a search, "
        "a file with the DARTS repository's Genotype(...) text, or inline text.")] = None,
    dataset: Annotated[str | None, _opt(f"Dataset (default: {_D.dataset}).")] = None,
    data_dir: Annotated[str | None, _opt("Folder of the dataset files.")] = None,
    image_size: Annotated[int | None, _opt(f"Image side (default: {_D.image_size}).")] = None,
    init_channels: Annotated[int | None, _opt(
        f"Channels of the first cells (default: {_D.init_channels}).")] = None,
    layers: Annotated[int | None, _opt(f"Number of cells (default: {_D.layers}).")] = None,
    epochs: Annotated[int | None, _opt(f"Epochs (default: {_D.epochs}; DARTS: 600).")] = None,
    batch_size: Annotated[int | None, _opt(f"Batch size (default: {_D.batch_size}).")] = None,
    lr: Annotated[float | None, _opt(f"Initial learning rate (default: {_D.lr}).")] = None,
    drop_path: Annotated[float | None, _opt(
        f"Final drop-path probability (default: {_D.drop_path}).")] = None,
    cutout: Annotated[int | None, _opt(f"Cutout square side, 0 = off (default: {_D.cutout}).")]
    = None,
    auxiliary: Annotated[bool | None, typer.Option(
        "--auxiliary/--no-auxiliary", help="Auxiliary head (weight --auxiliary-weight).",
        show_default=False)] = None,
    auxiliary_weight: Annotated[float | None, _opt(
        f"Auxiliary loss weight (default: {_D.auxiliary_weight}).")] = None,
    seed: Annotated[int | None, _opt(f"Seed (default: {_D.seed}).")] = None,
    device: Annotated[str | None, _opt(f"Torch device (default: {_D.device}).")] = None,
    max_steps: Annotated[int | None, _opt("Stop after this many steps (quick runs).")] = None,
    config: ConfigOption = None,
    runs_dir: RunsDirOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint.")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Train a DARTS genotype's evaluation network from scratch (cutout, drop-path, aux head)."""
    cfg = resolve_config(ctx, EvalTrainConfig, config)
    run_dir = RunDir(resolve_runs_dir(runs_dir), run)
    set_threads(threads)
    with TrainProgress(not quiet) as progress, resumable(f"nas train --run {run} --resume"):
        summary = train_genotype(cfg, run_dir, resume=resume, on_step=progress.update)
    console.print(
        f"[bold]{run}[/bold]: {summary['steps']} steps, val top-1 {100 * summary['val_acc']:.2f}%"
        f", test top-1 {100 * summary['test_acc']:.2f}%, {summary['params']:,} params, "
        f"{summary['macs']:,} MACs" + ("" if summary["completed"] else " (stopped early)"),
        highlight=False,
    )
    console.print(f"weights: {run_dir.path / 'train' / 'weights.safetensors'}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `nas train` to the root app."""
    app.command("train")(train)
