"""`nas rank`: does the supernet (or a proxy) rank subnets like their true accuracy?

Thin layer: options -> `RankConfig` + `RankTarget` -> `nas.rank.pipeline.rank_subnets` (with
the stand-alone trainer of `nas.train.subnet` for `--standalone`) -> a table (or `--json`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nas.commands._common import (
    ConfigOption,
    JsonOption,
    RunsDirOption,
    WaitOption,
    option,
    resolve_config,
    resolve_runs_dir,
)
from nas.rank.pipeline import RankConfig, RankTarget

_D = RankConfig(truth="-")  # defaults shown in --help (one truth is required to build it)
_RUNLESS = "Without a run (training-free scorers only)"
_STANDALONE = "Ground truth by training subnets alone (--standalone)"


def rank(
    ctx: typer.Context,
    run: Annotated[str | None, option(
        "Run with a trained supernet: scores its subnets by inherited val top-1 after BN "
        "recalibration, with the run's data.")] = None,
    space: Annotated[str | None, option("Search space to rank without a run.", panel=_RUNLESS)]
    = None,
    dataset: Annotated[str | None, option("Dataset of the proxies' batches (default: digits).",
                                        panel=_RUNLESS)] = None,
    data_dir: Annotated[str | None, option("Folder of the dataset files.", panel=_RUNLESS)] = None,
    image_size: Annotated[int | None, option("Image side (default: the dataset's).",
                                           panel=_RUNLESS)] = None,
    space_option: Annotated[list[str] | None, option(
        "KEY=VALUE passed to the space (e.g. channels=16); repeatable.", panel=_RUNLESS)] = None,
    samples: Annotated[int | None, option(
        f"Subnets ranked against --truth (default: {_D.samples}).")] = None,
    seed: Annotated[int | None, option(
        f"Seed of the sample, the bootstrap and the proxies (default: {_D.seed}).")] = None,
    bins: Annotated[int | None, option(
        f"Size bins the sample is stratified over (default: {_D.bins}).")] = None,
    truth: Annotated[str | None, option(
        "Ground truth: JSONL {\"arch\", \"top1\"} or a CSV with an arch column (the "
        "NAS-Bench-201 table); subnets are sampled from its rows.")] = None,
    truth_column: Annotated[str | None, option(
        "CSV column or JSONL key of the truth (default: <dataset>_test_top1, else top1).")]
    = None,
    standalone: Annotated[int | None, option(
        "Train K sampled subnets alone with the run's data and options as the truth (each "
        "resumable; finished ones are kept).", panel=_STANDALONE)] = None,
    standalone_epochs: Annotated[int | None, option(
        "Epochs of each stand-alone training (default: the run's).", panel=_STANDALONE)] = None,
    standalone_steps: Annotated[int | None, option(
        "Stop each stand-alone training after this many steps (quick checks).",
        panel=_STANDALONE)] = None,
    proxies: Annotated[str | None, option(
        "Zero-cost proxies to score with too, comma-separated: synflow, snip, grasp, jacov, "
        "naswot, combined, parzc (params and macs are always scored).")] = None,
    labels: Annotated[int | None, option(
        "Subnets whose truth parzc is fitted on (e.g. 50); every scorer is then judged on the "
        "other subnets only.")] = None,
    bootstrap: Annotated[int | None, option(
        f"Bootstrap resamples of the intervals (default: {_D.bootstrap}).")] = None,
    val_images: Annotated[int | None, option(
        "Score the supernet on the first N validation images only (default: all): cheaper "
        "for many subnets, noisier per subnet.")] = None,
    threads: Annotated[int | None, option("Torch CPU threads while scoring.")] = None,
    device: Annotated[str | None, option("cpu, cuda or cuda:N (default: cpu).")] = None,
    tag: Annotated[str | None, option(
        "Name of this ranking: runs/NAME/rank/TAG/ (default: the truth file's name, or "
        "standalone). Rerunning a tag reuses its scores.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    runs_dir: RunsDirOption = None,
    wait: WaitOption = False,
) -> None:
    """Measure how well the supernet, params and zero-cost proxies rank subnets by accuracy.

    Against a truth table or subnets trained alone: Kendall tau, Spearman and the top 10 %, each
    with a bootstrap interval.
    """
    from nas.artifacts import json_ready
    from nas.commands._rank_view import RichRankObserver, show_ranking
    from nas.rank.pipeline import rank_subnets
    from nas.train.subnet import train_for_ranking

    cfg = resolve_config(ctx, RankConfig, config)
    target = RankTarget(
        resolve_runs_dir(runs_dir), run=run, space=space, dataset=dataset, data_dir=data_dir,
        image_size=image_size, space_options=tuple(space_option or ()), tag=tag, wait=wait,
    )
    result = rank_subnets(cfg, target, observer=RichRankObserver(quiet=as_json),
                          train_alone=train_for_ranking)
    if as_json:
        # scorers in the table's order; NaN and infinities as null, as in the report's file
        typer.echo(json.dumps(json_ready(result.report), indent=2, allow_nan=False))
    else:
        show_ranking(result)


def register(app: typer.Typer) -> None:
    """Add `rank` to the root app."""
    app.command("rank")(rank)


__all__ = ["RankConfig", "rank", "register"]
