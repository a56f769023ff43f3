"""`nas train --genotype G`: train a DARTS genotype's evaluation network from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nas.artifacts import RunDir
from nas.commands._common import (
    ConfigOption,
    RunsDirOption,
    console,
    resolve_config,
    resolve_runs_dir,
)
from nas.config import config_to_dict
from nas.errors import ConfigError
from nas.train.darts_eval import EvalTrainConfig

STAGE = "train"
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
) -> None:
    """Train a DARTS genotype's evaluation network from scratch (cutout, drop-path, aux head)."""
    cfg = resolve_config(ctx, EvalTrainConfig, config)
    run_dir = RunDir(resolve_runs_dir(runs_dir), run)
    if not resume and run_dir.sub("train", "ckpt.pt").is_file():
        raise ConfigError(f"run '{run}' already trained a network; pass --resume to continue "
                          "it, or pick another --run")
    summary = _train(cfg, run_dir, resume=resume, quiet=quiet)
    console.print(
        f"[bold]{run}[/bold]: {summary['steps']} steps, val top-1 {100 * summary['val_acc']:.2f}%"
        f", test top-1 {100 * summary['test_acc']:.2f}%, {summary['params']:,} params, "
        f"{summary['macs']:,} MACs" + ("" if summary["completed"] else " (stopped early)"),
        highlight=False,
    )
    console.print(f"weights: {run_dir.path / 'train' / 'weights.safetensors'}")


def _train(cfg: EvalTrainConfig, run: RunDir, *, resume: bool, quiet: bool) -> dict[str, Any]:
    import torch

    from nas.data import load_dataset
    from nas.train.darts_eval import run_eval_training

    data_dir = None if cfg.data_dir is None else Path(cfg.data_dir)
    splits = load_dataset(cfg.dataset, data_dir=data_dir, image_size=cfg.image_size,
                          seed=cfg.seed)
    run.begin_stage(STAGE, config=config_to_dict(cfg), seed=cfg.seed, device=cfg.device)
    progress = Progress(TextColumn("ep {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.3f}"),
                        TimeElapsedColumn(), console=console, disable=quiet)
    task = progress.add_task("train", total=None, epoch=0, loss=0.0, acc=0.0)

    def on_step(record: dict[str, Any]) -> None:
        progress.update(task, completed=record["step"], total=record["total_steps"],
                        epoch=record["epoch"], loss=record["loss"], acc=record["acc"])

    try:
        with progress:
            summary = run_eval_training(cfg, run, splits=splits, device=torch.device(cfg.device),
                                        on_step=on_step, resume=resume)
    except BaseException:
        run.end_stage(STAGE, status="interrupted")
        raise
    run.end_stage(STAGE, summary={k: v for k, v in summary.items() if k != "genotype_string"})
    return summary


def register(app: typer.Typer) -> None:
    """Add `nas train` to the root app."""
    app.command("train")(train)
