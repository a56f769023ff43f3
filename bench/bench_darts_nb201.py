"""DARTS-family search on NAS-Bench-201 judged by the real table, at a CPU budget per search.

Each method searches the NB201 cell on the CIFAR-10 JPEGs (`imagefolder`, 45,000 train / 5,000
val images of the official training set) with one thread, for each seed; the found cell's true
CIFAR-10 test accuracy comes from ../shared/data/nb201/nb201_accuracy.csv (200 epochs of
stand-alone training, the benchmark's published values) and the alphas' drift toward skip
connections from the run's logs (mean softmax weight of `skip_connect` over the edges; 0.2 at
the start). `darts-pt` is DARTS-PT's perturbation selection on the `darts` run's supernet (the
same training, its selection's CPU time added).

Budget: CPU seconds of this process (`time.process_time`, one thread), per search: the plan
(epochs of `--epoch-steps` steps) comes from timing a few steps of the method first, so that
training, the per-epoch validation and the selection fit; a search that would still overrun
stops at the budget and derives its cell from where it got. Searches run in slices of about
`--slice-minutes` CPU minutes, each resuming the previous one's checkpoint (exactly: the shared
loop's resume), so the script can be killed at any time and started again with the same
arguments.

    nohup python bench/bench_darts_nb201.py --work ~/nas-bench/darts_nb201 \\
        > ~/nas-bench/darts_nb201.log 2>&1 &
    python bench/bench_darts_nb201.py --work ~/nas-bench/darts_nb201 --report   # the table
    python bench/bench_darts_nb201.py --methods rome --seeds 0 --cpu-minutes 5  # a quick one
    python bench/bench_darts_nb201.py --shard 1/2 ...   # two processes share the list

The report (`--report`) sets each method's found cells beside two baselines from the table: a
random cell (the table's mean) and the largest cell (most weights); and it ranks a fixed sample of
1,000 cells by each search's final alphas and by parameter count (Kendall tau against the
table, bench/_nb201_rank.py).

`--data-dir` defaults to an extraction of ../shared/data/cifar10-jpg.tar.gz inside `--work`
(outside the repository); without ../shared the script says so and exits. stdout: one JSON
line per finished search (bench/README.md); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import tarfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import emit, log  # noqa: E402
from bench._nb201_rank import (  # noqa: E402
    baselines,
    better_share,
    fmt_tau,
    mean_sd,
    ranking_rows,
)
from nas.artifacts import RunDir, read_jsonl  # noqa: E402
from nas.data import DatasetSplits, load_dataset  # noqa: E402
from nas.train.bilevel import BilevelConfig, BilevelTrainer  # noqa: E402
from nas.train.darts_select import perturbation_arch  # noqa: E402
from nas.train.loop import LoopOptions, TrainingLoop  # noqa: E402
from search_spaces.nb201.cells import to_string  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO / ".." / "shared" / "data"
METHODS = ("darts", "darts-pt", "sd-darts", "rarts", "rome", "gdas", "pc-darts", "darts-2nd",
           "fbnet", "proxyless")
ROBUST = ("sd-darts", "rarts", "rome", "darts-pt")
# steps of the reference search on NB201 (50 epochs of 391 batches of 64, arch lr 3e-4)
REFERENCE_STEPS = 50 * 391


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path.home() / "nas-bench" / "darts_nb201")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cpu-minutes", type=float, default=60.0)
    parser.add_argument("--slice-minutes", type=float, default=5.0)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells-per-stage", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epoch-steps", type=int, default=100)
    parser.add_argument("--arch-lr", default="auto",
                        help="Adam lr of the alphas; auto: 3e-4 x REFERENCE_STEPS / planned "
                             "steps (the alphas can travel as far as in the 50-epoch search)")
    parser.add_argument("--pt-batches", type=int, default=8)
    parser.add_argument("--shard", default="1/1", help="I/N: run every N-th search from the I-th")
    parser.add_argument("--report", action="store_true", help="print the table and exit")
    return parser.parse_args()


# ----------------------------------------------------------------------------- data
def data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    archive = SHARED / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        log(f"skipped: {archive} not found (needs ../shared/data beside the repository, or "
            "--data-dir with the cifar10-jpg train/ and test/ folders)")
        sys.exit(0)
    target = args.work / "data"
    if not (target / "cifar10-jpg" / "train").is_dir():
        log(f"extracting {archive} into {target}")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    return target / "cifar10-jpg"


def true_accuracy() -> dict[str, float]:
    path = SHARED / "nb201" / "nb201_accuracy.csv"
    if not path.is_file():
        log(f"skipped: {path} not found (needs ../shared/data beside the repository)")
        sys.exit(0)
    with path.open() as handle:
        return {row["arch"]: float(row["cifar10_test_top1"]) for row in csv.DictReader(handle)}


# ----------------------------------------------------------------------------- planning
def base_config(args: argparse.Namespace, method: str, seed: int) -> BilevelConfig:
    trained = "darts" if method == "darts-pt" else method
    extra: dict[str, Any] = {"latency_table": "measure"} if trained in ("fbnet", "proxyless") \
        else {}
    if args.arch_lr != "auto":
        extra["arch_lr"] = float(args.arch_lr)
    return BilevelConfig(
        method=trained, space="nb201", epochs=1, batch_size=args.batch_size,
        epoch_steps=args.epoch_steps, init_channels=args.channels,
        space_options=(f"cells_per_stage={args.cells_per_stage}",), seed=seed,
        eval_batch_size=256, val_batches=4, pt_batches=args.pt_batches, checkpoint_every=10**9,
        log_every=20, **extra)


def step_cost(config: BilevelConfig, splits: DatasetSplits, scratch: RunDir) -> dict[str, float]:
    """CPU seconds of one step, of one epoch-end validation and of one forward of a
    selection batch, timed on a throwaway search."""
    trainer = BilevelTrainer(config, scratch, splits, torch.device("cpu"))
    batches = iter(trainer.batches(0, start_batch=0))
    trainer.begin_epoch(0, start_batch=0)
    times = []
    for step in range(4):
        start = time.process_time()
        trainer.train_step(next(batches), step=step)
        times.append(time.process_time() - start)
    start = time.process_time()
    trainer.evaluate()
    validation = time.process_time() - start
    images = splits.val.images[: config.eval_batch_size]
    start = time.process_time()
    with torch.no_grad():
        trainer.net(images.float().div(255))
    return {"step": statistics.median(times[1:]), "validation": validation,
            "forward": time.process_time() - start}


def plan(args: argparse.Namespace, method: str, seed: int, splits: DatasetSplits,
         state: dict[str, Any]) -> BilevelConfig:
    """The search's config with as many epochs as the budget affords (kept in `state`)."""
    config = base_config(args, method, seed)
    if "epochs" not in state:
        scratch = RunDir(args.work / "scratch", f"{method}-s{seed}")
        cost = step_cost(config, splits, scratch)
        budget = 60.0 * args.cpu_minutes * 0.9  # room for slices' rebuilds and noise
        selection = 0.0
        if method in ("darts", "darts-pt"):  # the darts run keeps room for DARTS-PT's choice
            selection = 6 * 5 * args.pt_batches * cost["forward"] * 1.2
        per_epoch = args.epoch_steps * cost["step"] + cost["validation"]
        state.update(cost=cost, epochs=max(1, int((budget - selection) // per_epoch)))
        log(f"{method} seed {seed}: {cost['step']:.2f} s/step -> {state['epochs']} epochs of "
            f"{args.epoch_steps} steps")
    config = replace(config, epochs=int(state["epochs"]))
    if args.arch_lr == "auto":
        steps = config.epochs * args.epoch_steps
        scaled = min(1e-2, max(3e-4, 3e-4 * REFERENCE_STEPS / steps))
        config = replace(config, arch_lr=float(f"{scaled:.3g}"))
    return config


# ----------------------------------------------------------------------------- searching
def load_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"cpu": 0.0}


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(state, indent=1))
    path.with_suffix(".tmp").replace(path)


def train(args: argparse.Namespace, config: BilevelConfig, run: RunDir, splits: DatasetSplits,
          state: dict[str, Any], state_file: Path) -> BilevelTrainer:
    """Train in slices until the plan is done or the budget is spent; the last trainer."""
    budget = 60.0 * args.cpu_minutes
    while True:
        start = time.process_time()
        resume = (run.path / "supernet" / "checkpoint.pt").is_file()
        trainer = BilevelTrainer(config, run, splits, torch.device("cpu"), resume=resume)
        step_s = float(state["cost"]["step"])
        slice_steps = max(1, int(60.0 * args.slice_minutes / step_s))
        loop = TrainingLoop(trainer, run.path / "supernet", label=f"run '{run.name}'",
                            options=LoopOptions(max_steps=int(state.get("steps", 0)) + slice_steps,
                                                log_every=config.log_every))
        result = loop.run(loop.load(resume=resume))
        state["cpu"] += time.process_time() - start
        state["steps"], state["completed"] = result.steps, result.completed
        save_state(state_file, state)
        log(f"{run.name}: step {result.steps}/{loop.total_steps}, cpu {state['cpu']:.0f} s")
        if result.completed or state["cpu"] >= budget:
            state["stopped_by_budget"] = not result.completed
            return trainer


def skip_drift(run: RunDir) -> dict[str, float]:
    records = [r for r in read_jsonl(run.sub("supernet", "metrics.jsonl")) if "skip" in r]
    alphas = list(read_jsonl(run.sub("supernet", "alphas.jsonl")))
    return {"skip_first": records[0]["skip"] if records else math.nan,
            "skip_last": alphas[-1]["skip"] if alphas else math.nan}


def search(args: argparse.Namespace, method: str, seed: int, splits: DatasetSplits,
           table: dict[str, float]) -> dict[str, Any]:
    trained = "darts" if method == "darts-pt" else method
    run = RunDir(args.work / "runs", f"{trained}-s{seed}")
    state_file = run.path / "bench.json"
    state = load_state(state_file)
    key = "result_pt" if method == "darts-pt" else "result"
    if key in state:
        return dict(state[key])
    config = plan(args, method, seed, splits, state)
    save_state(state_file, state)
    trainer = None
    if "trained_cpu" not in state:
        trainer = train(args, config, run, splits, state, state_file)
        state["trained_cpu"] = state["cpu"]
    if trainer is None:  # trained by an earlier process: rebuild from the checkpoint
        trainer = BilevelTrainer(config, run, splits, torch.device("cpu"), resume=True)
        loop = TrainingLoop(trainer, run.path / "supernet", options=LoopOptions())
        trainer.load_state_dict(loop.load(resume=True) or {})
    start = time.process_time()
    if method == "darts-pt":
        subnet = perturbation_arch(trainer.net, splits, device=torch.device("cpu"),
                                   batches=config.pt_batches, batch_size=config.eval_batch_size)
    else:
        subnet = trainer.net.derive()
    cpu = float(state["trained_cpu"]) + time.process_time() - start
    arch = to_string(trainer.space.normalize(subnet))
    result = {"method": method, "seed": seed, "arch": arch, "true_top1": table[arch],
              "skip_ops": arch.count("skip_connect"), "cpu_s": round(cpu, 1),
              "steps": state.get("steps"), "epochs_planned": config.epochs,
              "stopped_by_budget": state.get("stopped_by_budget", False),
              **skip_drift(run), "network": {"channels": args.channels,
                                             "cells_per_stage": args.cells_per_stage,
                                             "image_size": args.image_size,
                                             "batch_size": args.batch_size},
              "config": {k: v for k, v in asdict(config).items() if v is not None}}
    state[key] = result
    save_state(state_file, state)
    return result


# ----------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> None:
    """Found cells' true top-1 beside a random and the largest cell; then how well params and
    each search's final alphas rank a sample of cells (bench/_nb201_rank.py)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    runs: dict[str, Path] = {}
    for path in sorted((args.work / "runs").glob("*/bench.json")):
        state = json.loads(path.read_text())
        if "result" in state:
            runs[path.parent.name] = path.parent
        for key in ("result", "result_pt"):
            if key in state:
                rows.setdefault(state[key]["method"], []).append(state[key])
    table = true_accuracy()
    print("| method | true CIFAR-10 top-1 (mean ± sd) | per seed | cells better | skip share "
          "first -> last | skips in cell | CPU min (mean) | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for name, base in baselines(table).items():
        spread = f"± {base['sd']:.2f}" if base.get("cells", 2) > 1 else "(1 cell)"
        # a random cell's place is uniform (50% on average), not the place of the mean
        better = "" if name == "random" else f"{100 * better_share(table, base['mean']):.0f}%"
        print(f"| {name} cell (baseline) | {base['mean']:.2f} {spread} | | {better} | | | 0 | |")
    for method in METHODS:
        results = sorted(rows.get(method, []), key=lambda r: r["seed"])
        if not results:
            continue
        accs = [r["true_top1"] for r in results]
        drift = " / ".join(f"{r['skip_first']:.2f}->{r['skip_last']:.2f}" for r in results)
        better = ", ".join(f"{100 * better_share(table, a):.0f}%" for a in accs)
        print(f"| {method}{' *' if method in ROBUST else ''} | {mean_sd(accs)} | "
              f"{', '.join(f'{a:.2f}' for a in accs)} | {better} | {drift} | "
              f"{', '.join(str(r['skip_ops']) for r in results)} | "
              f"{statistics.mean(r['cpu_s'] for r in results) / 60:.0f} | "
              f"{', '.join(str(r['steps']) for r in results)} |")
    ranked = ranking_rows(table, runs)
    print(f"\n| scorer ({ranked[0]['n']} cells of the table) | Kendall tau [95%] | "
          "precision top 10% |")
    print("|---|---|---|")
    for row in ranked:
        label = row["scorer"] if row["scorer"] == "params" else f"alphas of {row['scorer']}"
        print(f"| {label} | {fmt_tau(row)} | {row['precision_top10']:.2f} |")


def main() -> None:
    args = parse_args()
    args.work = args.work.expanduser().resolve()
    if args.report:
        report(args)
        return
    torch.set_num_threads(1)
    table = true_accuracy()
    splits = load_dataset("imagefolder", data_dir=data_dir(args), image_size=args.image_size,
                          seed=0)
    index, count = (int(v) for v in args.shard.split("/"))
    methods = args.methods.split(",")
    # darts-pt selects on the darts run's supernet: one job, so no two shards train it
    trained = list(dict.fromkeys("darts" if m == "darts-pt" else m for m in methods))
    jobs = [(m, int(s)) for s in args.seeds.split(",") for m in trained]
    random_cell = baselines(table)["random"]["mean"]
    for job, seed in jobs[index - 1::count]:
        for method in [m for m in methods if m == job or (job == "darts" and m == "darts-pt")]:
            result = search(args, method, seed, splits, table)
            emit(f"darts_nb201/{method}/seed{seed}", result["true_top1"], "% true top-1",
                 baseline="random cell (table mean)", baseline_value=random_cell,
                 **{k: v for k, v in result.items() if k not in ("method", "seed", "config")})


if __name__ == "__main__":
    main()
