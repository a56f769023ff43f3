"""`nas profile`: measure a device, fit latency predictors, report their quality.

`nas profile --run NAME --device D` measures; the subcommands `bundle`, `import` and `predict`
serve remote devices and users' own measurements. Without a run, `--space SPACE
--num-classes N --image-size R` keeps everything in `RUNS_DIR/_profiles/<space>-<R>px-<device>/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nas.commands._common import JsonOption, RunsDirOption, console, err_console, resolve_runs_dir
from nas.errors import ConfigError

app = typer.Typer(
    help="Measure a device's latency, fit and check latency predictors (see subcommands for "
    "remote devices and your own measurements).",
    invoke_without_command=True,
)

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
                      "residual or mlp.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the subnet sample and split.")]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_table(report: dict[str, Any]) -> Table:
    """The quality report as a rich table (one row per predictor, then the noise floor)."""
    table = Table(title=f"latency predictors for '{report['device']}': {report['n_subnets']} "
                  f"subnets, {report['n_blocks']} blocks")
    for column in ("predictor", "±5%", "±10%", "MAPE", "RMSE ms", "Kendall τ", "note"):
        table.add_column(column, justify="left" if column in ("predictor", "note") else "right")
    threshold = report["poor_threshold_within10"]
    for kind, entry in report["predictors"].items():
        q = entry.get("holdout")
        chosen = " *" if kind == report["chosen"] else ""
        if q is None:
            note = entry.get("skipped") or "not validated (too few subnets)"
            table.add_row(kind + chosen, "-", "-", "-", "-", "-", f"[dim]{note}[/dim]")
            continue
        note = f"[red]poor (<{100 * threshold:.0f}% within ±10%)[/red]" if q["poor"] else ""
        table.add_row(kind + chosen, _pct(q["within5"]), _pct(q["within10"]), f"{q['mape']:.2f}%",
                      f"{q['rmse_ms']:.3f}", _num(q["kendall_tau"]), note)
    noise = report.get("noise_floor") or {}
    if noise.get("n_pairs"):
        table.add_row("[dim]noise floor[/dim]", _pct(noise["within5"]), _pct(noise["within10"]),
                      f"{noise['mape']:.2f}%", "-", "-",
                      f"[dim]{noise['n_pairs']} subnets measured twice; median IQR "
                      f"{_pct(noise['median_rel_iqr'])}[/dim]")
    table.caption = (f"* chosen; {report['n_holdout']} held-out subnets, each predicted by a "
                     f"predictor fitted on {report['n_train']} others (cross-validation)")
    return table


class ProfileProgress:
    """A rich progress bar per phase: done/total, current ±10% estimate, time left."""

    def __init__(self, enabled: bool) -> None:
        self.tasks: dict[str, Any] = {}
        self.progress = Progress(
            TextColumn("[bold]{task.description}[/bold]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("±10%: {task.fields[estimate]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=console, disable=not enabled,
        )

    def __enter__(self) -> ProfileProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, event: Any) -> None:
        estimate = _pct(event.estimate_within10) if event.estimate_within10 is not None else "-"
        if event.phase not in self.tasks:
            self.tasks[event.phase] = self.progress.add_task(
                event.phase, total=event.total, estimate=estimate
            )
        self.progress.update(self.tasks[event.phase], completed=event.done, total=event.total,
                             estimate=estimate)


def _finish(report: dict[str, Any], root: Path, device: str, as_json: bool) -> None:
    from predictors import load_predictor, predictor_warning

    _, meta = load_predictor(root, device, warn=False)
    warning = predictor_warning(meta)
    if as_json:
        typer.echo(json.dumps({**report, "warning": warning}, indent=2, sort_keys=True))
        return
    console.print(report_table(report))
    console.print(f"predictors: {root / 'predictor'}")
    if warning:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)


@app.callback()
def profile(
    ctx: typer.Context,
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda[:i] or onnxruntime[:provider]"
                                        ".")] = "cpu",
    samples: Annotated[int, typer.Option("--samples", help="Subnets to measure.")] = 300,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size of each call.")] = 1,
    threads: Annotated[int, typer.Option("--threads", help="Intra-op threads.")] = 1,
    clock: Annotated[
        str, typer.Option("--clock", help="wall (elapsed time) or cpu (the thread's CPU time; "
                          "steadier on a busy shared machine; cpu device, 1 thread).")
    ] = "wall",
    budget_minutes: Annotated[
        float | None, typer.Option("--budget-minutes", help="Stop measuring after this long.")
    ] = None,
    measure_ms: Annotated[
        float, typer.Option("--measure-ms", help="Timed duration per model (more: less noise, "
                            "fewer subnets in a budget).")
    ] = 250.0,
    reference: Annotated[
        bool, typer.Option("--reference/--no-reference",
                           help="Time each model against a reference subnet (the smallest), "
                           "call by call, and report ratio x the reference's latency: a load or "
                           "clock speed that changes over the session cancels out. "
                           "--no-reference: plain timings.")
    ] = True,
    rounds: Annotated[
        int, typer.Option("--rounds", help="Passes over all subnets and blocks, spread over the "
                          "session; a subnet's latency is the lowest of its rounds (load only "
                          "ever slows a model down), and one whose rounds disagree by more than "
                          "5% is measured again. "
                          "1: a single pass plus repeats of a tenth (faster, noisier).")
    ] = 3,
    predictor: PredictorOption = "auto",
    no_blocks: Annotated[
        bool, typer.Option("--no-blocks", help="Skip the per-block table (no lookup table).")
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Forget earlier measurements instead of resuming.")
    ] = False,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure subnets and blocks on a device, fit latency predictors and report their quality."""
    if ctx.invoked_subcommand is not None:
        return
    from nas.artifacts import RunDir, device_dirname
    from nas.profile.devices import create_device
    from nas.profile.fit import build_predictors, training_data
    from nas.profile.measure import MeasureSettings
    from nas.profile.session import ProfilePlan, Session, resolutions_of
    from nas.profile.store import open_target
    from predictors.select import quick_within10

    if samples < 2 or batch_size < 1 or threads < 1 or measure_ms <= 0 or rounds < 1:
        raise ConfigError(f"expected --samples >= 2, --batch-size >= 1, --threads >= 1, "
                          f"--measure-ms > 0 and --rounds >= 1, got {samples}, {batch_size}, "
                          f"{threads}, {measure_ms}, {rounds}")
    the_space, store = open_target(resolve_runs_dir(runs_dir), run=run, space=space,
                                   num_classes=num_classes, image_size=image_size, device=device,
                                   options=space_option)
    the_device = create_device(device, threads=threads, clock=clock)
    if fresh:
        store.clear()
    plan = ProfilePlan(samples=samples, batch_size=batch_size, blocks=not no_blocks, seed=seed,
                       reference=reference, rounds=rounds,
                       budget_s=None if budget_minutes is None else 60 * budget_minutes,
                       settings=MeasureSettings(target_ms=measure_ms))
    resolutions = resolutions_of(the_space)

    def estimate() -> float | None:
        archs, y, featurizer, table = training_data(the_space, store, resolutions)
        return quick_within10(featurizer.transform(archs), y, block_ms=table, seed=seed)

    stage = f"profile-{device_dirname(device)}"
    run_dir = RunDir(resolve_runs_dir(runs_dir), run) if run else None
    if run_dir is not None:
        run_dir.begin_stage(stage, config={k: v for k, v in ctx.params.items()
                                           if k not in ("runs_dir", "as_json")},
                            seed=seed, device=device)
    show = not as_json and console.is_terminal
    with ProfileProgress(show) as bar:
        session = Session(the_space, the_space.build_supernet(), the_device, store, plan,
                          on_progress=bar.update, estimator=estimate)
        summary = session.run()
    report = build_predictors(
        the_space, store, resolutions=resolutions, seed=seed,
        force=None if predictor == "auto" else predictor,
        extra_meta={"fingerprint": the_device.fingerprint(), "setup": session.setup,
                    "session": summary},
    )
    if run_dir is not None:
        run_dir.end_stage(stage, summary={"chosen": report["chosen"], **summary})
    _finish(report, store.root, device, as_json)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="JSONL of {\"arch\"|\"block\", \"latency_ms\"}.")],
    device: Annotated[str, typer.Option("--device", help="Name of the device measured.")],
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    predictor: PredictorOption = "auto",
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop earlier measurements of this device first.")
    ] = False,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a device's predictors from measurements taken anywhere (subnets and blocks)."""
    from nas.profile.fit import build_predictors, import_measurements
    from nas.profile.session import resolutions_of
    from nas.profile.store import open_target

    the_space, store = open_target(resolve_runs_dir(runs_dir), run=run, space=space,
                                   num_classes=num_classes, image_size=image_size, device=device,
                                   options=space_option)
    subnets, blocks = import_measurements(the_space, store, file, replace=replace)
    if not as_json:
        console.print(f"imported {subnets} subnet and {blocks} block measurements from {file}")
    report = build_predictors(
        the_space, store, resolutions=resolutions_of(the_space), seed=seed,
        force=None if predictor == "auto" else predictor,
        extra_meta={"fingerprint": None, "setup": {"device": device, "imported_from": file.name}},
    )
    _finish(report, store.root, device, as_json)


@app.command("fit")
def fit_command(
    device: Annotated[str, typer.Option("--device", help="Device whose measurements to use.")],
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    predictor: PredictorOption = "auto",
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refit and re-check the predictors from the stored measurements (no measuring)."""
    from nas.artifacts import read_json
    from nas.profile.fit import build_predictors
    from nas.profile.session import resolutions_of
    from nas.profile.store import REPORT, open_target

    the_space, store = open_target(resolve_runs_dir(runs_dir), run=run, space=space,
                                   num_classes=num_classes, image_size=image_size, device=device,
                                   options=space_option)
    previous = store.predictor_dir / REPORT
    # keep the provenance of the measurements (fingerprint, set-up, session) from the last fit
    kept = read_json(previous) if previous.is_file() else {}
    extra = {k: kept[k] for k in ("fingerprint", "setup", "session") if k in kept}
    report = build_predictors(the_space, store, resolutions=resolutions_of(the_space), seed=seed,
                              force=None if predictor == "auto" else predictor,
                              extra_meta=extra or {"fingerprint": None})
    _finish(report, store.root, device, as_json)


@app.command("predict")
def predict_command(
    file: Annotated[Path, typer.Argument(help="JSONL of subnet configs (canonical or OFA).")],
    device: Annotated[str, typer.Option("--device", help="Device whose predictor to use.")],
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Use this predictor kind, not the chosen one.")
    ] = None,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Predicted latency of each subnet of a JSONL file, in input order."""
    from nas.arch import arch_id
    from nas.profile.fit import read_archs
    from nas.profile.store import open_target
    from predictors import load_predictor, predictor_warning

    the_space, store = open_target(resolve_runs_dir(runs_dir), run=run, space=space,
                                   num_classes=num_classes, image_size=image_size, device=device,
                                   options=space_option)
    archs = read_archs(the_space, file)
    model, meta = load_predictor(store.root, device, kind=kind, space=the_space, warn=False)
    warning = predictor_warning(meta)
    if warning:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    latency = model.predict(archs) if archs else np.zeros(0)
    # exact MACs and parameters beside the prediction, so users can constrain those too
    rows: list[dict[str, Any]] = [
        {"arch_id": arch_id(a), "arch": a, "latency_ms": float(ms), **the_space.complexity(a)}
        for a, ms in zip(archs, latency, strict=True)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"predicted latency on '{device}' ({model.kind})")
    for column in ("#", "arch_id", "latency ms", "MMACs", "params (M)"):
        table.add_column(column, justify="right")
    for number, row in enumerate(rows, start=1):
        table.add_row(str(number), str(row["arch_id"]), f"{row['latency_ms']:.3f}",
                      f"{row['macs'] / 1e6:.1f}", f"{row['params'] / 1e6:.2f}")
    console.print(table)


@app.command("bundle")
def bundle_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the bundle to.")],
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    samples: Annotated[int, typer.Option("--samples", help="Subnets to include.")] = 300,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size of each call.")] = 1,
    no_blocks: Annotated[
        bool, typer.Option("--no-blocks", help="Leave the per-block models out.")
    ] = False,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
) -> None:
    """Write ONNX models and a stand-alone runner (numpy + onnxruntime) for a remote device."""
    from nas.profile.bundle import write_bundle
    from nas.profile.store import open_target

    the_space, _ = open_target(resolve_runs_dir(runs_dir), run=run, space=space,
                               num_classes=num_classes, image_size=image_size, device="bundle",
                               options=space_option)
    show = console.is_terminal
    with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), console=console,
                  disable=not show) as bar:
        task = bar.add_task("export", total=None)
        manifest = write_bundle(
            the_space, the_space.build_supernet(), out, samples=samples, batch_size=batch_size,
            blocks=not no_blocks, seed=seed,
            on_item=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(f"bundle: {out} ({manifest['n_subnets']} subnets, "
                  f"{manifest['n_blocks']} blocks)")
    target = f"--run {run}" if run else " ".join(
        f"{flag} {value}" for flag, value in (
            ("--space", space), ("--num-classes", num_classes), ("--image-size", image_size)
        ) if value is not None
    )
    console.print(f"on the device: python {out.name}/run_bundle.py {out.name} --out results.jsonl"
                  f"; then here: nas profile import results.jsonl --device NAME {target}")


def register(root: typer.Typer) -> None:
    """Add `profile` (with its subcommands) to the root app."""
    root.add_typer(app, name="profile")


__all__ = ["app", "register"]
