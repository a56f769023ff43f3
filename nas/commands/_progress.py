"""Progress that works everywhere: rich bars in a terminal, plain lines elsewhere.

Without a terminal (nohup, CI, Slurm, a pipe) a bar draws nothing, so `Bars` prints one line
per task every `NAS_PROGRESS_SECONDS` seconds (default 30) instead, plus the last one. Both
kinds print a duration estimate once, from the first items of a task, before most of the wait.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from rich import progress
from rich.console import Console
from rich.text import Text

from nas.commands._common import console
from nas.train.loop import StepLog

PROGRESS_SECONDS = 30.0  # between plain progress lines; NAS_PROGRESS_SECONDS changes it
ESTIMATE_AFTER_S = 5.0  # the duration estimate waits this long for steady figures


def progress_seconds() -> float:
    """Seconds between plain progress lines (`NAS_PROGRESS_SECONDS`, default 30)."""
    text = os.environ.get("NAS_PROGRESS_SECONDS", "")
    try:
        value = float(text) if text else PROGRESS_SECONDS
    except ValueError:
        return PROGRESS_SECONDS
    return value if value >= 0 else PROGRESS_SECONDS


def duration(seconds: float | None) -> str:
    """`1:02:03`, `4:05` or `-` for unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes = f"{rest // 60:02d}" if hours else f"{rest // 60}"
    return f"{hours}:" * bool(hours) + f"{minutes}:{rest % 60:02d}"


def _default_console() -> Console:
    return console  # looked up at each call, so tests can swap the module's console


@dataclass
class _Task:
    description: str
    total: float | None
    fields: dict[str, Any]
    completed: float = 0.0
    started: float = field(default_factory=time.monotonic)
    first_done: float | None = None  # completed count at the first update (resumed work)
    first_at: float = 0.0
    printed: float = -1.0  # the completed count of the last plain line
    printed_at: float = 0.0
    estimated: bool = False

    def left_s(self) -> float | None:
        """Seconds left at the rate since the first update (resumed work does not count)."""
        if self.total is None or self.first_done is None:
            return None
        done = self.completed - self.first_done
        spent = time.monotonic() - self.first_at
        if done <= 0 or spent <= 0:
            return None
        return max(self.total - self.completed, 0.0) * spent / done


class Bars:
    """Rich bars (`label`, bar, done/total, `fields`, elapsed, left) or plain lines.

    The API is the subset of `rich.progress.Progress` the commands use: `add_task`, `update`,
    `start`, `stop` and use as a context manager. `label` and `fields` are rich templates
    (`{task.description}`, `{task.fields[NAME]}`).

    Args:
        label: the first column.
        fields: more columns.
        console: where bars or lines go.
        enabled: False draws and prints nothing (`--quiet`, `--json`).
        transient: a terminal bar disappears when stopped.
        estimate: print "about M:SS for N items" once per task, from its first items.
        unit: what a task counts, in the estimate ("steps", "subnets").
    """

    def __init__(
        self, label: str, *fields: str, console: Console | None = None, enabled: bool = True,
        transient: bool = False, estimate: bool = True, unit: str = "items",
    ) -> None:
        self.label, self.fields = label, fields
        self.console = console or _default_console()
        self.enabled, self.estimate, self.unit = enabled, estimate, unit
        self.every = progress_seconds()
        self.tasks: dict[int, _Task] = {}
        self.rich: progress.Progress | None = None
        if enabled and self.console.is_terminal:
            columns: list[progress.ProgressColumn] = [
                progress.TextColumn(label), progress.BarColumn(), progress.MofNCompleteColumn(),
                *(progress.TextColumn(f) for f in fields),
                progress.TimeElapsedColumn(), progress.TimeRemainingColumn(),
            ]
            self.rich = progress.Progress(*columns, console=self.console, transient=transient)

    def __enter__(self) -> Bars:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.rich is not None:
            self.rich.start()

    def stop(self) -> None:
        if self.rich is not None:
            self.rich.stop()
        elif self.enabled:
            # where each ended, unless just printed or never begun (a failed start ends
            # with its one-line error only)
            for task in self.tasks.values():
                if task.first_done is not None and task.printed != task.completed:
                    self._line(task)

    def add_task(self, description: str, *, total: float | None = None, **fields: Any) -> int:
        index = len(self.tasks)
        self.tasks[index] = _Task(description, total, dict(fields))
        if self.rich is not None:
            self.rich.add_task(description, total=total, **fields)
        return index

    def update(
        self, task_id: int, *, completed: float | None = None, total: float | None = None,
        advance: float | None = None, **fields: Any,
    ) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if advance is not None:
            task.completed += advance
        if completed is not None:
            task.completed = completed
        task.fields.update(fields)
        if task.first_done is None:  # rates count from here: earlier work may be resumed
            task.first_done, task.first_at = task.completed, time.monotonic()
        if self.rich is not None:
            self.rich.update(progress.TaskID(task_id), completed=task.completed,
                             total=task.total, **fields)
        if not self.enabled:
            return
        self._maybe_estimate(task)
        finished = task.total is not None and task.completed >= task.total
        due = time.monotonic() - max(task.printed_at, task.started) >= self.every
        if self.rich is None and (due or (finished and task.printed != task.completed)):
            self._line(task)

    def print(self, text: str) -> None:
        """A line above the bars (or among the plain lines)."""
        if self.enabled:
            self.console.print(text, highlight=False)

    def _maybe_estimate(self, task: _Task) -> None:
        if not self.estimate or task.estimated or task.total is None:
            return
        spent = time.monotonic() - task.first_at
        left = task.left_s()
        if left is None or spent < ESTIMATE_AFTER_S:
            return
        task.estimated = True
        if left < ESTIMATE_AFTER_S:
            return  # a short job: nothing worth estimating
        rate = spent / max(task.completed - (task.first_done or 0.0), 1e-9)
        self.print(f"{self._render(self.label, task)}: about {duration(left)} left for "
                   f"{task.total - task.completed:.0f} {self.unit} ({rate:.2g} s each, "
                   "measured on the first ones)")

    def _line(self, task: _Task) -> None:
        task.printed = task.completed
        task.printed_at = time.monotonic()
        total = "?" if task.total is None else f"{task.total:.0f}"
        parts = [self._render(self.label, task), f"{task.completed:.0f}/{total}"]
        parts += [self._render(f, task) for f in self.fields]
        parts += [f"elapsed {duration(time.monotonic() - task.started)}",
                  f"left {duration(task.left_s())}"]
        self.console.print("  ".join(p for p in parts if p), highlight=False, soft_wrap=True)

    @staticmethod
    def _render(template: str, task: _Task) -> str:
        view = SimpleNamespace(description=task.description, fields=task.fields)
        try:
            return Text.from_markup(template.format(task=view)).plain
        except (KeyError, ValueError, IndexError):  # a field not reported yet
            return ""


class TrainProgress:
    """The training display of `nas train-supernet`, `nas train` and quickstart.

    Prints "resumed from step N of M" when the loop resumed, then a bar (or plain lines).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars = Bars(
            "[bold]{task.fields[phase]}[/bold] ep {task.fields[epoch]}",
            "loss {task.fields[loss]:.3f}", "acc {task.fields[acc]}",
            "{task.fields[ips]:.0f} img/s", enabled=enabled, unit="steps",
        )
        self.task: int | None = None

    def __enter__(self) -> TrainProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def update(self, log: StepLog) -> None:
        if not self.enabled:
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
            if log.resumed_from is not None:
                self.bars.print(f"resumed from step {log.resumed_from} of {log.total_steps}")
            self.task = self.bars.add_task("train", total=log.total_steps, **fields)
        self.bars.update(self.task, completed=log.step, total=log.total_steps, **fields)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


__all__ = ["Bars", "TrainProgress", "duration", "progress_seconds"]
