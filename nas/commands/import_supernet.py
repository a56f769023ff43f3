"""`nas import-supernet`: start a run from a supernet trained elsewhere (Once-for-All's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas.artifacts import RunDir
from nas.commands._common import RunsDirOption, WaitOption, console, resolve_runs_dir
from nas.errors import ConfigError

app = typer.Typer(
    help="Start a run from a supernet trained elsewhere, instead of `nas train-supernet`.",
    no_args_is_help=True,
)


def _resolutions(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        raise ConfigError(
            f"--resolutions: expected integers like 160,192,224, got '{text}'"
        ) from None


@app.command("ofa")
def import_ofa(
    file: Annotated[Path, typer.Argument(
        help="OFA's checkpoint as downloaded (ofa_mbv3_d234_e346_k357_w1.0, ..._w1.2, "
        "ofa_resnet50_...), or any {'state_dict': ...} of OFAMobileNetV3 / OFAResNets.",
        show_default=False)],
    run: Annotated[str, typer.Option("--run", help="Run to create.", show_default=False)],
    space: Annotated[str | None, typer.Option(
        "--space", help="ofa-mbv3 or ofa-resnet50 (default: read from the file).",
        show_default=False)] = None,
    width_mult: Annotated[float | None, typer.Option(
        "--width-mult", help="ofa-mbv3: 1.0 or 1.2; ofa-resnet50: OFA's largest width "
        "multiplier (default: read from the tensor shapes).", show_default=False)] = None,
    resolutions: Annotated[str | None, typer.Option(
        "--resolutions", help="Input sides the subnets may use, comma-separated "
        "(default: 128,160,192,224, as OFA).", show_default=False)] = None,
    dataset: Annotated[str, typer.Option(
        "--dataset", help="Data that eval, search, export and finetune use on this run "
        "(recorded, not read now).")] = "imagefolder",
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder of that data: for imagefolder, one sub-folder per class "
        "in OFA's class order (ImageNet's sorted synsets).", show_default=False)] = None,
    runs_dir: RunsDirOption = None,
    wait: WaitOption = False,
) -> None:
    """Import a Once-for-All supernet checkpoint (weights and BN statistics) as a new run.

    The source (file sha256, space, width) shows in `nas runs show` and in export cards.
    `nas export --no-bn-recalibration` keeps the imported BN statistics (OFA's own subnets).
    `nas export --format ofa` writes a run's supernet back in OFA's format.
    """
    from nas.supernet.ofa_import import OFA_RESOLUTIONS, import_ofa_supernet

    run_dir = RunDir(resolve_runs_dir(runs_dir), run)
    summary = import_ofa_supernet(
        file, run_dir, space=space, width_mult=width_mult,
        resolutions=_resolutions(resolutions) or OFA_RESOLUTIONS, dataset=dataset,
        data_dir=data_dir, wait=wait,
    )
    source, kwargs = summary.source, summary.space["kwargs"]
    sizes = ", ".join(f"{key} {value}" for key, value in kwargs.items()
                      if key in ("width_mult", "width_scale", "num_classes"))
    console.print(f"imported [bold]{source['file']}[/bold] ({source['network']}, sha256 "
                  f"{source['sha256'][:12]}) into run [bold]{run}[/bold]")
    console.print(f"space {summary.space['name']}: {sizes}, resolutions "
                  f"{','.join(map(str, kwargs['resolutions']))}; {summary.tensors} tensors, "
                  f"{summary.params / 1e6:.2f}M parameters -> {summary.weights}")
    if data_dir is None and dataset not in ("digits", "synthetic"):
        console.print(f"[yellow]note:[/yellow] no --data-dir: profile works, but eval, "
                      f"search and finetune need the {dataset} data; import again into a new "
                      "--run with --data-dir")
    console.print(f"next: nas profile --run {run} --device cpu")


def register(root: typer.Typer) -> None:
    """Add `import-supernet` (subcommand per format: `ofa`) to the root app."""
    root.add_typer(app, name="import-supernet")


__all__ = ["app", "import_ofa", "register"]
