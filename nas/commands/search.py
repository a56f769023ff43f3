"""`nas search`: the Pareto front of accuracy vs. device latency under constraints.

Thin layer: options -> `SearchConfig` -> `nas.search.pipeline.run_searches` (objectives from
the supernet and predictors, or an oracle table; one search per device; files in
`runs/NAME/search/TAG/`) -> a table per device (or `--json`) on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nas.commands._common import (
    ConfigOption,
    JsonOption,
    RunsDirOption,
    ThreadsOption,
    WaitOption,
    resolve_config,
    resolve_runs_dir,
    set_threads,
)
from nas.search.problems import SearchConfig


def search(
    ctx: typer.Context,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Run with a trained supernet and profiled devices (optional with --oracle).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="Profiled device to search for; repeat for one front per device.",
            show_default=False,
        ),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            "--objectives",
            help="Comma-separated metrics: top1, latency, macs, params or oracle columns; "
            "NAME:max|min sets the direction (default: top1,latency).",
            show_default=False,
        ),
    ] = None,
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--algorithm",
            help="evolution, nsga2, optuna-tpe, optuna-nsga2 or random "
            "(default: nsga2 for 2+ objectives).",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget", help="Distinct subnets to score (default: 500).", show_default=False
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option("--population", help="Population size (default: 50).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the search (default: 0).", show_default=False),
    ] = None,
    latency_max: Annotated[
        float | None,
        typer.Option(
            "--latency-max",
            help="Latency bound in ms (checked before any accuracy evaluation).",
            show_default=False,
        ),
    ] = None,
    macs_max: Annotated[
        float | None,
        typer.Option("--macs-max", help="MACs bound in millions.", show_default=False),
    ] = None,
    params_max: Annotated[
        float | None,
        typer.Option("--params-max", help="Parameter bound in millions.", show_default=False),
    ] = None,
    accuracy: Annotated[
        str | None,
        typer.Option(
            "--accuracy",
            help="supernet: evaluate every candidate on data after BN recalibration; predictor:"
            " an online accuracy predictor skips candidates that cannot reach the front; "
            "proxy:NAME: the same screen reading a zero-cost proxy (naswot, synflow ...).",
            show_default=False,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna RDB URL of the study, shareable by several processes "
            "(default: sqlite file in the search folder).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Local worker processes searching one study together (default: 1); the "
            "budget is the study's.",
            show_default=False,
        ),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            help="Name of this search: runs/NAME/search/TAG/ and the study name "
            "(default: the device).",
            show_default=False,
        ),
    ] = None,
    oracle: Annotated[
        Path | None,
        typer.Option(
            "--oracle",
            help="JSONL table of metrics per subnet to search instead of a supernet.",
            show_default=False,
        ),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            "--space", help="Search space of the --oracle table (e.g. nb201).", show_default=False
        ),
    ] = None,
    skip_missing: Annotated[
        bool | None,
        typer.Option(
            "--skip-missing",
            help="With --oracle: skip subnets the table lacks instead of failing.",
            show_default=False,
        ),
    ] = None,
    calibration_batches: Annotated[
        int | None,
        typer.Option(
            "--calibration-batches",
            help="BN-recalibration batches per subnet scored (default: the run's setting).",
            show_default=False,
        ),
    ] = None,
    measure: Annotated[
        bool | None,
        typer.Option(
            "--measure/--no-measure",
            help="Time the front on this machine when the device was profiled here; members "
            "measured over --latency-max are marked and not picked (default: on).",
            show_default=False,
        ),
    ] = None,
    accept_poor_predictor: Annotated[
        bool | None,
        typer.Option(
            "--accept-poor-predictor",
            help="Search on a poor latency predictor even when the front cannot be measured "
            "here.",
            show_default=False,
        ),
    ] = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    runs_dir: RunsDirOption = None,
    wait: WaitOption = False,
) -> None:
    """Search subnets for the best accuracy/latency trade-off on each device."""
    from nas.commands._search_view import RichSearchObserver
    from nas.search.pipeline import SearchTarget, run_searches

    set_threads(threads)
    cfg = resolve_config(ctx, SearchConfig, config)
    target = SearchTarget(
        resolve_runs_dir(runs_dir), run=run, devices=device or [], tag=tag, oracle=oracle,
        space=space, wait=wait,
    )
    searches = run_searches(cfg, target, observer=RichSearchObserver(quiet=as_json))
    if as_json:
        rows = [row for search in searches for row in search.rows()]
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))


def register(app: typer.Typer) -> None:
    """Add `search` to the root app."""
    app.command("search")(search)


__all__ = ["SearchConfig", "register", "search"]
