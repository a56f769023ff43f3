"""`nas finetune DIR`: fine-tune an exported subnet and export the result (see `nas.finetune`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from nas.commands._common import (
    RunsDirOption,
    ThreadsOption,
    WaitOption,
    console,
    resumable,
    set_threads,
)


def finetune_command(
    directory: Annotated[Path, typer.Argument(help="Export folder written by `nas export`.")],
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 5,
    distill: Annotated[bool, typer.Option(
        "--distill", help="Also distil from the supernet's largest subnet.")] = False,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine decay).")] = 0.01,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed of batch order and dropout.")] = 0,
    device: Annotated[str, typer.Option("--device", help="Torch device to train on.")] = "cpu",
    threads: ThreadsOption = None,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Output folder (default: DIR/finetuned/); rerun to resume.",
        show_default=False)] = None,
    runs_dir: RunsDirOption = None,
    wait: WaitOption = False,
) -> None:
    """Fine-tune an exported subnet on its run's data; resumes an interrupted fine-tune."""
    from nas.commands.export import print_export
    from nas.finetune import FinetuneConfig, finetune_export
    from nas.train.loop import StepLog

    set_threads(threads)
    cfg = FinetuneConfig(epochs=epochs, lr=lr, batch_size=batch_size, distill=distill,
                         seed=seed, device=device)

    def show(log: StepLog) -> None:
        if log.epoch_end is None:
            return
        e = log.epoch_end
        console.print(f"epoch {e['epoch']}/{e['epochs']}: loss {e['loss']:.3f}, train top-1 "
                      f"{e['train_top1']:.2f}%, val top-1 {e['val_top1']:.2f}% "
                      f"({e['seconds']:.1f} s)")

    again = " ".join(["nas", *sys.argv[1:]]) if sys.argv[1:] else f"nas finetune {directory}"
    with resumable(again):
        result = finetune_export(directory, cfg, out_dir=out, runs_dir=runs_dir, on_step=show,
                                 argv=sys.argv, wait=wait)
    console.print(f"val top-1 {result.val_top1_before:.2f}% -> {result.val_top1_after:.2f}%")
    print_export(result.metrics, result.out_dir, f"fine-tuned from {directory}")


__all__ = ["finetune_command"]
