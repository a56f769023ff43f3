"""The training progress bar of `nas train-supernet` and `nas train`, fed by `StepLog`s."""

from __future__ import annotations

from typing import Any

from rich import progress as bars

from nas.commands._common import console
from nas.train.loop import StepLog


class TrainProgress:
    """A rich progress bar of training steps; silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.progress: bars.Progress | None = None
        self.task: Any = None
        if enabled:
            self.progress = bars.Progress(
                bars.TextColumn("[bold]{task.fields[phase]}[/bold] ep {task.fields[epoch]}"),
                bars.BarColumn(),
                bars.MofNCompleteColumn(),
                bars.TextColumn("loss {task.fields[loss]:.3f}"),
                bars.TextColumn("acc {task.fields[acc]}"),
                bars.TextColumn("{task.fields[ips]:.0f} img/s"),
                bars.TimeElapsedColumn(),
                bars.TimeRemainingColumn(),
                console=console,
                transient=False,
            )

    def __enter__(self) -> TrainProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, log: StepLog) -> None:
        if self.progress is None:
            return
        acc = _pct(log.acc)
        if log.phase == "sandwich":  # the sandwich rule's largest and smallest subnets: "L/S"
            acc += f"/{_pct(log.acc_smallest)}"
        fields: dict[str, Any] = {
            "phase": f"{log.phase} ({log.phase_index + 1}/{log.num_phases})",
            "epoch": log.epoch,
            "loss": log.loss,
            "acc": acc,
            "ips": log.images_per_s,
        }
        if self.task is None:
            self.task = self.progress.add_task("train", total=log.total_steps, **fields)
        self.progress.update(self.task, completed=log.step, total=log.total_steps, **fields)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"
