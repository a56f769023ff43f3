"""`nas train-supernet`: train a space's supernet into `runs/NAME/supernet/`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nas.artifacts import RunDir
from nas.commands._common import (
    ConfigOption,
    RunsDirOption,
    ThreadsOption,
    WaitOption,
    console,
    option,
    resolve_config,
    resolve_runs_dir,
    resumable,
    set_threads,
)
from nas.commands._progress import TrainProgress
from nas.commands._train_resume import resumed_config
from nas.commands._train_view import show_summary
from nas.runtime import resolve_device
from nas.train.config import TrainConfig
from nas.train.distributed import DistContext
from nas.train.registry import TRAINERS
from nas.train.supernet_run import train_run

_D = TrainConfig()  # defaults shown in --help; the config dataclass stays their only source


def _method_help() -> str:
    """Every family's methods, the default first: "darts spaces: darts (default), ..."."""
    parts = []
    for family in TRAINERS.families():
        default, *others = TRAINERS.methods(family)
        parts.append(f"{family} spaces: {', '.join([f'{default} (default)', *others])}")
    return "; ".join(parts)


# DARTS-only options get their own --help panel (an OFA space refuses them)
_DARTS_PANEL = "DARTS-family search (--space darts, or nb201 with a DARTS-family --method)"
_FEW_SHOT_PANEL = "Few-shot NAS (nb201, ofa-mbv3)"


def train_supernet(
    ctx: typer.Context,
    run: Annotated[str, typer.Option("--run", help="Run name: artifacts go to RUNS_DIR/NAME/.")],
    space: Annotated[str | None, option(f"Search space (default: {_D.space}).")] = None,
    dataset: Annotated[str | None, option(f"Dataset (default: {_D.dataset}).")] = None,
    data_dir: Annotated[
        str | None,
        option("Folder of the dataset files (CIFAR, imagefolder)."),
    ] = None,
    image_size: Annotated[
        int | None,
        option(f"Stored image side (default: {_D.image_size})."),
    ] = None,
    resolutions: Annotated[
        str | None,
        option("Elastic input resolutions, comma-separated, one drawn per subnet "
             f"(default: {','.join(map(str, _D.resolutions))})."),
    ] = None,
    width_mult: Annotated[
        float | None,
        option("Width multiplier of the space (ofa-mbv3: 1.0 or 1.2; darts: 16 x width "
             "initial channels, prefer --init-channels)."),
    ] = None,
    space_options: Annotated[
        list[str] | None,
        option("KEY=VALUE passed to the space's constructor, repeatable: e.g. channels=8 and "
             "cells_per_stage=2 for a smaller nb201 supernet on a CPU budget.",
             "--space-option"),
    ] = None,
    small_input: Annotated[
        bool | None,
        typer.Option(
            "--small-input/--no-small-input",
            help="ofa-mbv3: fewer stride-2 layers for 8-64 px inputs (more accurate, ~12x the "
            "MACs at 32 px) (default: off).",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[int | None, option(f"Training epochs (default: {_D.epochs}).")] = None,
    batch_size: Annotated[int | None, option(f"Batch size (default: {_D.batch_size}).")] = None,
    lr: Annotated[float | None, option(f"Peak learning rate (default: {_D.lr}).")] = None,
    weight_decay: Annotated[float | None, option(f"Weight decay (default: {_D.weight_decay}).")]
    = None,
    label_smoothing: Annotated[
        float | None, option(f"Label smoothing (default: {_D.label_smoothing}).")] = None,
    seed: Annotated[int | None, option(f"Seed of every random draw (default: {_D.seed}).")] = None,
    device: Annotated[str | None, option("cpu, cuda or cuda:N (default: cpu).")] = None,
    max_steps: Annotated[int | None, option("Stop after this many steps (quick runs).")] = None,
    method: Annotated[
        str | None, option(f"Training method of the space's family: {_method_help()}.")] = None,
    sampler: Annotated[
        str | None, option(
            "Subnet sampler: uniform, complexity or pada (paths and images drawn by "
            "gradient-norm importance, docs/rank.md) (default: uniform).")] = None,
    num_random: Annotated[
        int | None, option(f"Random subnets per step (default: {_D.num_random}).")] = None,
    distill_weight: Annotated[
        float | None,
        option(f"Weight of in-place distillation (default: {_D.distill_weight})."),
    ] = None,
    few_shot: Annotated[
        int | None,
        option("Few-shot NAS: split the supernet into K sub-supernets after a warm-up, on the "
             "decision (nb201 edge, ofa-mbv3 block kernel/expand) whose candidates' gradients "
             "disagree most (gradient matching); each subnet is then trained and scored by "
             "its own sub-supernet (default: one-shot).", panel=_FEW_SHOT_PANEL),
    ] = None,
    few_shot_warmup: Annotated[
        int | None,
        option("Few-shot: epochs trained before the split (default: half the epochs).",
             panel=_FEW_SHOT_PANEL),
    ] = None,
    few_shot_batches: Annotated[
        int | None,
        option("Few-shot: batches the gradients are compared on (default: 10).",
             panel=_FEW_SHOT_PANEL),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        option(f"Checkpoint every N steps (default: {_D.checkpoint_every})."),
    ] = None,
    checkpoint_minutes: Annotated[
        float | None,
        option("Also checkpoint when this many minutes passed since the last checkpoint; "
             f"Ctrl-C and SIGTERM save one too (default: {_D.checkpoint_minutes:g})."),
    ] = None,
    amp: Annotated[
        str | None,
        option("Mixed precision: none, bf16 or fp16 (fp16: CUDA only) (default: none)."),
    ] = None,
    channels_last: Annotated[
        bool,
        typer.Option("--channels-last", help="Use the channels_last memory layout."),
    ] = False,
    init_channels: Annotated[
        int | None,
        option("DARTS: channels of the first cells, doubled at each reduction, even "
               "(default: 16; overrides --width-mult); nb201: C.", panel=_DARTS_PANEL),
    ] = None,
    layers: Annotated[
        int | None,
        option("darts: number of cells, reductions at 1/3 and 2/3 (default: 8).",
             panel=_DARTS_PANEL),
    ] = None,
    partial_channels: Annotated[
        int | None,
        option("pc-darts: K, only 1/K of each edge's channels go through the mixed operation; "
             "K must divide init-channels/2 (default: 4).", panel=_DARTS_PANEL),
    ] = None,
    tau_max: Annotated[
        float | None,
        option("gdas, rome: Gumbel-softmax temperature at the first epoch, annealed linearly "
             "(default: 10).", panel=_DARTS_PANEL),
    ] = None,
    tau_min: Annotated[
        float | None,
        option("gdas, rome: temperature at the last epoch (default: 0.1).", panel=_DARTS_PANEL),
    ] = None,
    arch_lr: Annotated[
        float | None,
        option("DARTS: Adam learning rate of the architecture weights (default: 3e-4, "
             "pc-darts 6e-4).", panel=_DARTS_PANEL),
    ] = None,
    arch_warmup_epochs: Annotated[
        int | None,
        option("DARTS: epochs that train only the weights before the architecture starts "
             "moving (default: 0; PC-DARTS uses 15 of 50).", panel=_DARTS_PANEL),
    ] = None,
    select: Annotated[
        str | None,
        option("DARTS: how the genotype is chosen: argmax (largest alpha per edge) or "
             "perturbation (DARTS-PT: each op's effect on validation accuracy) "
             "(default: argmax).", panel=_DARTS_PANEL),
    ] = None,
    latency_table: Annotated[
        str | None,
        option("fbnet/proxyless: per-op latency table: a JSON/JSONL FILE, 'profile' or "
             "'profile:DEVICE' (measured by `nas profile --space darts --device DEVICE`), "
             "'measure' (time the ops on this CPU now) or 'toy' (analytic) (default: profile "
             "for cpu when it exists, else measure).", panel=_DARTS_PANEL),
    ] = None,
    target_latency: Annotated[
        float | None,
        option("fbnet/proxyless: target latency of the cells in ms (default: 70% of the "
             "initial expected latency).", panel=_DARTS_PANEL),
    ] = None,
    latency_weight: Annotated[
        float | None,
        option("fbnet/proxyless: weight of the latency term (FBNet alpha, default 1.0; "
             "ProxylessNAS lambda, default 0.1).", panel=_DARTS_PANEL),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run from its last checkpoint."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    threads: ThreadsOption = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON (a cell search's has \"arch\").")] = False,
    runs_dir: RunsDirOption = None,
    config: ConfigOption = None,
    wait: WaitOption = False,
) -> None:
    """Train a weight-sharing supernet, or search a cell with a DARTS-family method.

    Once-for-all spaces train with the sandwich rule or progressive shrinking, nb201 single path
    (spos, sandwich) or with a DARTS-family method; darts cells with DARTS-family methods
    (the found cell goes to arch.json).
    """
    run_dir = RunDir(resolve_runs_dir(runs_dir), run)
    # on --resume the run's saved options come first (the typed flags alone may be invalid)
    cfg = resumed_config(run_dir, ctx, config) if resume else resolve_config(ctx, TrainConfig,
                                                                             config)
    resolve_device(cfg.device)
    set_threads(threads)
    dist = DistContext.from_env()
    is_main = dist.is_main
    quiet = quiet or json_output
    show = is_main and not quiet
    # torchrun --max-restarts relaunches the same command line after a worker died: the
    # relaunched workers continue from the checkpoint when there is one
    mode = True if resume else (None if dist.restarts else False)
    with TrainProgress(show) as progress, resumable(f"nas train-supernet --run {run} --resume"):
        summary = train_run(cfg, run_dir, resume=mode, on_step=progress.update, dist=dist,
                            wait=wait)
    if is_main and json_output:
        typer.echo(json.dumps({**summary.as_dict(), "run": run_dir.name}))
    if is_main and not quiet:
        show_summary(console, run_dir, summary)

def register(app: typer.Typer) -> None:
    """Add `train-supernet` and `eval` to the root app."""
    from nas.commands.eval import eval_subnet

    app.command("train-supernet")(train_supernet)
    app.command("eval")(eval_subnet)


__all__ = ["register", "train_supernet"]
