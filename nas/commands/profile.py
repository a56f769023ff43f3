"""`nas profile`: measure a device, fit latency predictors, report their quality.

`nas profile --run NAME --device D` measures; the subcommands `bundle`, `import` and `predict`
serve remote devices and users' own measurements. Without a run, `--space SPACE
--num-classes N --image-size R` keeps everything in `RUNS_DIR/_profiles/<space>-<R>px-<device>/`.
The work is done by `nas.profile.pipeline`; this module parses options and renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nas.commands._common import JsonOption, RunsDirOption, WaitOption, console, resolve_runs_dir
from nas.commands._profile_options import (
    ClassesOption,
    ImageSizeOption,
    PredictorOption,
    RunOption,
    SeedOption,
    SpaceOption,
    SpaceOptionsOption,
    TransferOption,
)
from nas.profile.pipeline import ProfileTarget

app = typer.Typer(
    help="Measure a device's latency, fit and check latency predictors (see subcommands for "
    "remote devices and your own measurements).",
    invoke_without_command=True,
)

def _target(runs_dir: Path | None, device: str, run: str | None, space: str | None,
            num_classes: int | None, image_size: int | None,
            space_option: list[str] | None, wait: bool = False) -> ProfileTarget:
    return ProfileTarget(resolve_runs_dir(runs_dir), device, run=run, space=space,
                         num_classes=num_classes, image_size=image_size,
                         space_options=tuple(space_option or ()), wait=wait)


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
    wait: WaitOption = False,
) -> None:
    """Measure subnets and blocks on a device, fit latency predictors and report their quality."""
    if ctx.invoked_subcommand is not None:
        return
    from nas.commands._profile_view import ProfileProgress, show_predictors
    from nas.profile.pipeline import ProfileOptions, profile_device

    options = ProfileOptions(
        samples=samples, batch_size=batch_size, threads=threads, clock=clock,
        budget_minutes=budget_minutes, measure_ms=measure_ms, reference=reference, rounds=rounds,
        predictor=predictor, no_blocks=no_blocks, fresh=fresh, seed=seed,
    )
    target = _target(runs_dir, device, run, space, num_classes, image_size, space_option, wait)
    with ProfileProgress(not as_json) as bar:
        fitted = profile_device(target, options, on_progress=bar.update)
    show_predictors(fitted, as_json=as_json)


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
    transfer_from: TransferOption = None,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
    wait: WaitOption = False,
) -> None:
    """Build a device's predictors from measurements taken anywhere (subnets and blocks)."""
    from nas.commands._profile_view import show_predictors
    from nas.profile.pipeline import import_profile

    target = _target(runs_dir, device, run, space, num_classes, image_size, space_option, wait)
    fitted = import_profile(target, file, predictor=predictor, replace=replace, seed=seed,
                            transfer_from=transfer_from)
    if not as_json and fitted.imported is not None:
        subnets, blocks = fitted.imported
        console.print(f"imported {subnets} subnet and {blocks} block measurements from {file}")
    show_predictors(fitted, as_json=as_json)


@app.command("fit")
def fit_command(
    device: Annotated[str, typer.Option("--device", help="Device whose measurements to use.")],
    run: RunOption = None,
    space: SpaceOption = None,
    num_classes: ClassesOption = None,
    image_size: ImageSizeOption = None,
    space_option: SpaceOptionsOption = None,
    predictor: PredictorOption = "auto",
    transfer_from: TransferOption = None,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
    wait: WaitOption = False,
) -> None:
    """Refit and re-check the predictors from the stored measurements (no measuring)."""
    from nas.commands._profile_view import show_predictors
    from nas.profile.pipeline import refit_predictors

    target = _target(runs_dir, device, run, space, num_classes, image_size, space_option, wait)
    show_predictors(refit_predictors(target, predictor=predictor, seed=seed,
                                     transfer_from=transfer_from), as_json=as_json)


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
    from nas.commands._profile_view import prediction_table, warn
    from nas.profile.pipeline import predict_latency

    target = _target(runs_dir, device, run, space, num_classes, image_size, space_option)
    prediction = predict_latency(target, file, kind=kind)
    if prediction.warning:
        warn(prediction.warning)
    if as_json:
        typer.echo(json.dumps(prediction.rows, indent=2))
        return
    console.print(prediction_table(prediction, device))


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
    transfer_from: TransferOption = None,
    seed: SeedOption = 0,
    runs_dir: RunsDirOption = None,
) -> None:
    """Write ONNX models and a stand-alone runner (numpy + onnxruntime) for a remote device."""
    from nas.commands._profile_view import bundle_summary
    from nas.commands._progress import Bars
    from nas.profile.pipeline import make_bundle

    target = _target(runs_dir, "bundle", run, space, num_classes, image_size, space_option)
    with Bars("exporting", unit="models") as bar:
        task = bar.add_task("export", total=None)
        manifest = make_bundle(
            target, out, samples=samples, batch_size=batch_size, blocks=not no_blocks, seed=seed,
            on_item=lambda done, total: bar.update(task, completed=done, total=total),
            transfer_from=transfer_from,
        )
    console.print(bundle_summary(out, manifest, target, transfer_from))


def register(root: typer.Typer) -> None:
    """Add `profile` (with its subcommands) to the root app."""
    root.add_typer(app, name="profile")


__all__ = ["app", "register"]
