"""`nas quickstart`: the whole pipeline on the digits dataset with small settings.

train-supernet -> profile (this CPU) -> search under a latency budget -> export the best subnet,
each stage run through the same command functions users call, so the run folder is exactly what
the individual commands would have made. Stages already done are skipped and interrupted ones
resume (training from its checkpoint, profiling from its measurements, search from its study),
so running the command again is safe and cheap.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from nas.artifacts import RunDir, atomic_write_json, read_json, read_jsonl
from nas.commands._common import RunsDirOption, console, resolve_runs_dir
from nas.errors import ArtifactError, NasError

TAG = "quickstart"
DEVICE = "cpu"


@dataclass(frozen=True)
class QuickstartSettings:
    """The small settings: a few minutes on a 2-core CPU (see the README).

    Digits are 8x8 images, so 12 px inputs lose nothing; a sandwich step of 32 images (3
    subnets) then takes ~1.2 s on a 2-core CPU shared with other jobs.
    """

    epochs: int = 3  # 3 x 45 steps of 32 digits: ~60-70% val top-1 for the largest subnet
    max_steps: int | None = None  # stop early (the lr schedule still spans all epochs)
    batch_size: int = 32
    num_random: int = 1  # subnets per step: largest, smallest and this many random ones
    image_size: int = 12
    resolutions: str = "8,12"
    profile_samples: int = 30
    profile_minutes: float = 1.0
    search_budget: int = 24
    population: int = 8
    eval_batch_size: int = 64  # search: BN calibration uses 10 batches of this size


def _invoke(args: list[str]) -> None:
    """Run a `nas` command in this process; a failure stops the quickstart with its code.

    `sys.argv` is set to the equivalent command line while it runs, so that the manifest and
    the model card record commands a user can rerun one by one.
    """
    from cli import app

    saved = sys.argv
    sys.argv = ["nas", *args]
    try:
        code = app(args, standalone_mode=False)
    finally:
        sys.argv = saved
    if isinstance(code, int) and code != 0:
        raise typer.Exit(code=code)


def _stage(index: int, title: str, done: bool, action: Callable[[], None]) -> float:
    """Run one stage unless it is done; returns its wall time in seconds."""
    if done:
        console.print(f"[bold][{index}/4] {title}[/bold]: already done, skipped")
        return 0.0
    console.print(f"[bold][{index}/4] {title}[/bold]")
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    console.print(f"[dim]  {title}: {seconds:.0f} s[/dim]")
    return seconds


def latency_budget(run: RunDir) -> float:
    """A latency bound (ms) that about half of the profiled subnets meet: the median."""
    from nas.profile.store import ProfileStore

    records = list(read_jsonl(ProfileStore(run.path, DEVICE).latency_path))
    values = [float(r["latency_ms"]) for r in records if "latency_ms" in r]
    if not values:
        raise ArtifactError(f"run '{run.name}' has no profile of '{DEVICE}' to set a budget from")
    return round(statistics.median(values), 3)


def _stage_done(run: RunDir, stage: str) -> bool:
    if not run.exists():
        return False
    return (run.manifest().get("stages", {}).get(stage) or {}).get("status") == "done"


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
    common = ["--run", run, "--runs-dir", str(root)]
    start = time.perf_counter()
    console.print(f"quickstart: run '{run}' in {root} (digits at {settings.image_size} px, "
                  f"seed {seed}); rerun the same command to resume")
    weights = the_run.path / "supernet" / "weights.safetensors"
    resume = ["--resume"] if (the_run.path / "supernet" / "checkpoint.pt").is_file() else []
    _stage(1, "train a supernet", weights.is_file(), lambda: _invoke([
        "train-supernet", *common, "--dataset", "digits", "--image-size",
        str(settings.image_size), "--resolutions", settings.resolutions, "--epochs",
        str(settings.epochs), *(["--max-steps", str(settings.max_steps)]
                                if settings.max_steps else []), "--batch-size",
        str(settings.batch_size), "--num-random", str(settings.num_random), "--seed", str(seed),
        *resume]))
    profiled = (the_run.path / "predictor" / DEVICE / "selected.json").is_file()
    _stage(2, "profile this CPU", profiled, lambda: _invoke([
        "profile", *common, "--device", DEVICE, "--samples", str(settings.profile_samples),
        "--budget-minutes", str(settings.profile_minutes), "--threads", "1",
        "--seed", str(seed)]))
    budget = latency_budget(the_run)
    pareto = the_run.path / "search" / TAG / "pareto.json"
    search_config = the_run.sub("config", "quickstart-search.json")
    atomic_write_json(search_config, {"batch_size": settings.eval_batch_size})
    _stage(3, f"search under {budget} ms on {DEVICE}", pareto.is_file(), lambda: _invoke([
        "search", *common, "--device", DEVICE, "--tag", TAG, "--latency-max", str(budget),
        "--budget", str(settings.search_budget), "--population", str(settings.population),
        "--seed", str(seed), "--config", str(search_config)]))
    out = _export(the_run)
    _summary(the_run, out, budget, time.perf_counter() - start)


def _export(run: RunDir) -> Path:
    """Stage 4: export the best subnet of the quickstart search (skipped when done)."""
    from nas.commands.export import print_export
    from nas.export.run import export_from_run

    stage = (run.manifest().get("stages", {}).get("export") or {})
    previous = Path(str((stage.get("summary") or {}).get("out_dir", "")))
    if _stage_done(run, "export") and (previous / "metrics.json").is_file():
        console.print("[bold][4/4] export the best subnet[/bold]: already done, skipped")
        return previous
    console.print("[bold][4/4] export the best subnet[/bold]")
    argv = ["nas", "export", "--run", run.name, "--runs-dir", str(run.root), "--search", TAG,
            "--pick", "best"]
    result = export_from_run(run, pick_rule="best", search_tag=TAG, argv=argv)
    print_export(result.report.metrics, result.report.out_dir, result.pick.reason)
    return result.report.out_dir


def _summary(run: RunDir, out: Path, budget: float, seconds: float) -> None:
    try:
        metrics = read_json(out / "metrics.json")
    except NasError:
        metrics = {}
    acc = metrics.get("accuracy") or {}
    name, root = run.name, run.root
    console.print(f"\n[bold green]done[/bold green] in {seconds:.0f} s. Everything is in "
                  f"{run.path}/:")
    for label, path in (
        ("supernet", run.path / "supernet"), ("latency profile", run.path / "profile" / DEVICE),
        ("predictors", run.path / "predictor" / DEVICE),
        ("Pareto front", run.path / "search" / TAG / "pareto.json"),
        ("exported model", out), ("model card", out / "model_card.md"),
    ):
        console.print(f"  {label:15} {path}")
    if acc:
        console.print(f"  chosen subnet: val top-1 {acc.get('val_top1', 0):.2f}%, test top-1 "
                      f"{acc.get('test_top1') or 0:.2f}%, latency budget {budget} ms")
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


__all__ = ["QuickstartSettings", "latency_budget", "quickstart_command"]
