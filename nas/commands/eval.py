"""`nas eval`: top-1 and loss of one subnet of a trained supernet, after BN recalibration."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.artifacts import RunDir
from nas.commands._common import (
    JsonOption,
    RunsDirOption,
    ThreadsOption,
    console,
    resolve_runs_dir,
    set_threads,
)


def eval_subnet(
    run: Annotated[str, typer.Option("--run", help="Run holding a trained supernet.")],
    subnet: Annotated[
        str,
        typer.Option(
            "--subnet",
            help="Subnet config: inline JSON, a JSON file, 'max' or 'min' "
            "(Once-for-All's ks/e/d/r format is accepted).",
        ),
    ] = "max",
    split: Annotated[str, typer.Option("--split", help="val or test.")] = "val",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Evaluation batch size.")] = 256,
    threads: ThreadsOption = None,
    runs_dir: RunsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate one subnet of a trained supernet on the validation (or test) split."""
    from nas.supernet.trained import evaluate_run_subnet

    set_threads(threads)
    run_dir = RunDir(resolve_runs_dir(runs_dir), run).require()
    result = evaluate_run_subnet(
        run_dir, subnet, split=split, device=device, batch_size=batch_size
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    console.print(_table(run, result))


def _table(run: str, result: dict[str, Any]) -> Table:
    table = Table(title=f"{run}: subnet {result['arch_id']} on {result['split']}")
    for column in ("top-1", "loss", "images", "params", "MACs"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{result['top1']:.2f}%",
        f"{result['loss']:.4f}",
        str(result["n"]),
        f"{result.get('params', 0):,}",
        f"{result.get('macs', 0):,}",
    )
    return table


__all__ = ["eval_subnet"]
