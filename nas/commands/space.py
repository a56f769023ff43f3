"""`nas space list|show`: which search spaces exist, their choices and a subnet's size."""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.arch import arch_id
from nas.commands._common import JsonOption, console
from nas.errors import ConfigError, NasError
from search_spaces import SPACES, SearchSpace, create_space

app = typer.Typer(
    help="List search spaces and show their choices and subnet sizes.", no_args_is_help=True
)


def _summary(cls: type[SearchSpace]) -> str:
    return (inspect.getdoc(cls) or "").splitlines()[0] if cls.__doc__ else ""


def _num_subnets(name: str) -> int | None:
    try:
        value = create_space(name).describe().get("num_subnets")
    except NasError:
        return None
    return int(value) if value is not None else None


@app.command("list")
def list_spaces(as_json: JsonOption = False) -> None:
    """List the registered search spaces."""
    rows: list[dict[str, Any]] = []
    for name in SPACES.names():
        cls = SPACES.get(name)
        rows.append(
            {
                "name": name,
                "encoding_version": cls.encoding_version,
                "num_subnets": _num_subnets(name),
                "summary": _summary(cls),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="search spaces")
    for column in ("name", "subnets", "description"):
        table.add_column(column)
    for row in rows:
        count = row["num_subnets"]
        table.add_row(row["name"], f"{count:.3g}" if count else "-", row["summary"])
    console.print(table)


def build_space(name: str, options: dict[str, Any]) -> SearchSpace:
    """Create `name` with the construction flags the user gave; refuse flags it does not take."""
    cls = SPACES.get(name)
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in options.items():
        if value is not None and key not in accepted:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag}: space '{name}' does not take this option; leave it out")
    return create_space(name, **options)


def space_report(space: SearchSpace, subnet: str | None) -> dict[str, Any]:
    """The JSON object of `nas space show`: the space, and `params`/`macs` of the subnet
    (the largest one when no subnet is given), plus both ends of the space."""
    arch = space.subnet_from_text(subnet or "max")
    report: dict[str, Any] = {
        "space": space.describe(),
        "subnet": arch,
        "arch_id": arch_id(arch),
        **space.complexity(arch),
        "largest": space.complexity(space.largest()),
        "smallest": space.complexity(space.smallest()),
    }
    if subnet is not None and space.has_blocks:
        report["blocks"] = space.block_keys(arch)
    return report


@app.command("show")
def show_space(
    name: Annotated[str, typer.Argument(help="Space name (see `nas space list`).")],
    subnet: Annotated[
        str | None,
        typer.Option(
            "--subnet",
            help="max, min, inline JSON or a JSON file (OFA's ks/e/d/r format accepted).",
            show_default=False,
        ),
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option("--num-classes", help="Classifier outputs.", show_default=False)
    ] = None,
    image_size: Annotated[
        int | None, typer.Option("--image-size", help="Input side in pixels.", show_default=False)
    ] = None,
    width_mult: Annotated[
        float | None,
        typer.Option(
            "--width-mult", help="Width multiplier (ofa-mbv3: 1.0 or 1.2).", show_default=False
        ),
    ] = None,
    genotype: Annotated[
        str | None,
        typer.Option(
            "--genotype",
            help="darts: a genotype (published name, JSON or Genotype(...) file) as the subnet.",
            show_default=False,
        ),
    ] = None,
    init_channels: Annotated[
        int | None,
        typer.Option("--init-channels", help="darts: initial channels (36 to evaluate).",
                     show_default=False),
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option("--layers", help="darts: number of cells (20 to evaluate).",
                     show_default=False),
    ] = None,
    small_input: Annotated[
        bool | None,
        typer.Option("--small-input/--no-small-input",
                     help="ofa-mbv3, ofa-resnet50: fewer stride-2 layers for 8-64 px inputs "
                     "(default: off, as `nas train-supernet`).", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a space's choices and size, and a subnet's parameters and MACs (batch 1)."""
    if small_input is None and "small_input" in inspect.signature(
            SPACES.get(name).__init__).parameters:
        small_input = False  # the network `nas train-supernet` builds by default
    space = build_space(
        name, {"num_classes": num_classes, "image_size": image_size, "width_mult": width_mult,
               "init_channels": init_channels, "layers": layers, "small_input": small_input}
    )
    if genotype is not None:  # DARTS genotypes come in formats parse_arch_argument cannot read
        from search_spaces.darts.genotypes import load_genotype_argument

        subnet = json.dumps(space.normalize(load_genotype_argument(genotype)))
    report = space_report(space, subnet)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_report(report, subnet)


def _print_report(report: dict[str, Any], subnet: str | None) -> None:
    info = report["space"]
    console.print(
        f"[bold]{info.get('name')}[/bold]  construction: {json.dumps(info.get('kwargs', {}))}",
        highlight=False,
    )
    table = Table(title="choices")
    table.add_column("choice")
    table.add_column("values")
    for key, values in info.get("choices", {}).items():
        table.add_row(key, ", ".join(str(v) for v in values))
    console.print(table)
    if info.get("num_subnets") is not None:
        console.print(f"subnets: {int(info['num_subnets']):.4g}")
    sizes = Table(title="size (params, MACs at batch 1)")
    for column in ("subnet", "params", "MACs"):
        sizes.add_column(column)
    rows = [("largest", report["largest"]), ("smallest", report["smallest"])]
    if subnet is not None:
        rows.insert(
            0, (f"{subnet if subnet in ('max', 'min') else 'given'} ({report['arch_id']})", report)
        )
    for label, cost in rows:
        sizes.add_row(label, f"{cost['params']:,}", f"{cost['macs']:,}")
    console.print(sizes)
    if subnet is not None:
        console.print(f"subnet: {json.dumps(report['subnet'])}", highlight=False)


def register(root: typer.Typer) -> None:
    """Add `space` (with its subcommands) to the root app."""
    root.add_typer(app, name="space")
