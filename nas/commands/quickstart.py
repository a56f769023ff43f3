"""`nas quickstart`: the whole pipeline on the digits dataset with small settings.

The stages run in `nas.quickstart.run_quickstart`; this module shows them as the individual
commands would (progress, tables, files) and ends with where everything is and what to try next.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas.artifacts import RunDir
from nas.commands._common import RunsDirOption, console, resolve_runs_dir
from nas.errors import NasError
from nas.quickstart import (
    DEVICE,
    STAGES,
    TAG,
    QuickstartObserver,
    QuickstartResult,
    QuickstartSettings,
    run_quickstart,
)

if TYPE_CHECKING:
    from nas.export.from_run import RunExport
    from nas.profile.pipeline import Predictors
    from nas.profile.session import Progress
    from nas.train.loop import StepLog
    from nas.train.supernet_run import TrainSummary


class RichQuickstartObserver(QuickstartObserver):
    """Each stage as its own command shows it; `close()` stops a bar left by a failure."""

    def __init__(self) -> None:
        from nas.commands._search_view import RichSearchObserver

        self.search = RichSearchObserver(quiet=False)
        self.bar: Any = None  # the running stage's progress display

    def stage(self, index: int, title: str, *, skipped: bool) -> None:
        note = ": already done, skipped" if skipped else ""
        console.print(f"[bold][{index}/{STAGES}] {title}[/bold]{note}")

    def stage_done(self, title: str, seconds: float) -> None:
        console.print(f"[dim]  {title}: {seconds:.0f} s[/dim]")

    def train_step(self, log: StepLog) -> None:
        from nas.commands._progress import TrainProgress

        if self.bar is None:
            self.bar = TrainProgress(True).__enter__()
        self.bar.update(log)

    def trained(self, run: RunDir, summary: TrainSummary) -> None:
        from nas.commands._train_view import summary_table
        from nas.supernet.weights import weights_path

        self.close()
        console.print(summary_table(run, summary))
        console.print(f"weights: {weights_path(run)}", soft_wrap=True)

    def profile_progress(self, event: Progress) -> None:
        from nas.commands._profile_view import ProfileProgress

        if self.bar is None:
            self.bar = ProfileProgress(True).__enter__()
        self.bar.update(event)

    def profiled(self, fitted: Predictors) -> None:
        from nas.commands._profile_view import show_predictors

        self.close()
        show_predictors(fitted, as_json=False)

    def exported(self, export: RunExport) -> None:
        from nas.commands.export import print_export

        print_export(export.report.metrics, export.report.out_dir, export.pick.reason)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def quickstart_command(
    run: Annotated[str, typer.Option("--run", help="Run name.")] = "quickstart",
    runs_dir: RunsDirOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every stage.")] = 0,
    threads: Annotated[int, typer.Option(
        "--threads", help="Torch intra-op threads for every stage.")] = 1,
) -> None:
    """Train, profile this CPU, search under a latency budget and export, on digits."""
    import torch

    # one thread: on a small shared CPU, OpenMP threads that spin-wait for busy cores made a
    # sandwich step 20x slower (57 s vs 2.5 s measured with 2 threads on 2 loaded cores)
    torch.set_num_threads(max(1, threads))
    settings = QuickstartSettings()
    root = resolve_runs_dir(runs_dir)
    the_run = RunDir(root, run)
    start = time.perf_counter()
    console.print(f"quickstart: run '{run}' in {root} (digits at {settings.image_size} px, "
                  f"seed {seed}); rerun the same command to resume")
    observer = RichQuickstartObserver()
    try:
        result = run_quickstart(the_run, seed=seed, settings=settings, observer=observer)
    finally:
        observer.close()
    _summary(result, time.perf_counter() - start)


def _summary(result: QuickstartResult, seconds: float) -> None:
    from nas.artifact_kinds import EXPORT_METRICS
    from nas.artifacts import read_json

    run, out, budget = result.run, result.out_dir, result.budget
    try:
        metrics = read_json(out / "metrics.json", EXPORT_METRICS)
    except NasError:
        metrics = {}
    acc = metrics.get("accuracy") or {}
    console.print(f"\n[bold green]done[/bold green] in {seconds:.0f} s. Everything is in "
                  f"{run.path}/:")
    for label, path in (
        ("supernet", run.supernet_dir), ("latency profile", run.profile_dir(DEVICE)),
        ("predictors", run.predictor_dir(DEVICE)),
        ("Pareto front", run.search_dir(TAG) / "pareto.json"),
        ("exported model", out), ("model card", out / "model_card.md"),
    ):
        console.print(f"  {label:15} {path}")
    if acc:
        console.print(f"  chosen subnet: val top-1 {acc.get('val_top1', 0):.2f}%, test top-1 "
                      f"{acc.get('test_top1') or 0:.2f}%, latency budget {budget} ms")
    _next_steps(run, out, budget)


def _next_steps(run: RunDir, out: Path, budget: float) -> None:
    name, root = run.name, run.root
    flags = f"--run {name}" + (f" --runs-dir {root}" if str(root) != "runs" else "")
    console.print("next:")
    for line in (
        f"nas runs show {name}" + (f" --runs-dir {root}" if str(root) != "runs" else ""),
        f"nas search {flags} --device cpu --tag wider --latency-max {2 * budget:g} --budget 200",
        f"nas export {flags} --search {TAG} --pick 0",
        f"nas finetune {out} --epochs 3 --distill",
        f"python -c \"import nas; print(nas.load_exported('{out}'))\"",
        "nas train-supernet --run big --epochs 30   # a better supernet (longer)",
    ):
        console.print(f"  {line}")


def register(app: typer.Typer) -> None:
    """Add `quickstart` to the root app."""
    app.command("quickstart")(quickstart_command)


__all__ = ["QuickstartSettings", "quickstart_command", "register"]
