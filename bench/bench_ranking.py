"""Does the supernet rank subnets right? NB201 supernets at several CPU budgets against the table.

For each training budget (epochs) one NB201 supernet is trained on the CIFAR-10 JPEG folders
with `nas train-supernet`, then `nas rank` scores `--samples` cells (stratified by size, drawn
from the NAS-Bench-201 table) by inherited accuracy (BN recalibrated) and by the parameter
count, the trivial baseline. Everything goes through the commands a user runs, in child
processes with one torch thread, so the CPU seconds counted are those of the children.

    tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp           # /tmp/cifar10-jpg/{train,test}
    python bench/bench_ranking.py --data-dir /tmp/cifar10-jpg \
        --truth ../shared/data/nb201/nb201_accuracy.csv --budgets 1,4,16 --out /tmp/bench-rank

Few-shot NAS against the uniform one-shot baseline (issue 20): `--few-shot K` trains, per budget
and per seed of `--seeds`, the one-shot supernet and a `--few-shot K` one with the same steps,
ranks both on the same cells (`nas rank --seed --rank-seed`) and reports the paired difference
of Kendall tau with a bootstrap interval over the cells, per seed and averaged over the seeds:

    python bench/bench_ranking.py --data-dir /tmp/cifar10-jpg \
        --truth ../shared/data/nb201/nb201_accuracy.csv --budgets 16 --seeds 0,1,2 \
        --few-shot 2 --samples 200 --out /tmp/bench-few-shot

Resumable: a budget whose supernet is trained is not trained again (a killed training resumes
with `--resume`), and `nas rank` keeps its scores per tag. Extra `--space-option KEY=VALUE`
shrink the supernet for a CPU budget (e.g. cells_per_stage=1); `--sampler pada` trains with
path and data importance sampling (PA&DA) instead of uniform draws. stdout: one JSON line per
budget (bench/README.md): the supernet's Kendall tau, ratio against the parameter count's tau,
training CPU seconds; the table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import children_cpu_seconds, emit, log, run_nas  # noqa: E402


def train_once(
    run: str, epochs: int, options: argparse.Namespace, *, seed: int,
    extra: Sequence[str] = (), sampler: str | None = None,
) -> float:
    """Train the budget's supernet unless it is trained; returns the training CPU seconds."""
    run_dir = Path(options.out) / run
    cpu_file = run_dir / "bench_train_cpu.json"
    if cpu_file.is_file():
        return float(json.loads(cpu_file.read_text())["cpu_seconds"])
    resume = ["--resume"] if (run_dir / "supernet" / "checkpoint.pt").is_file() else []
    before = children_cpu_seconds()
    args = [
        "train-supernet", "--run", run, "--space", "nb201", "--method", options.method,
        "--sampler", sampler or options.sampler,
        "--dataset", "imagefolder", "--data-dir", options.data_dir, "--image-size", "32",
        "--epochs", str(epochs), "--batch-size", str(options.batch_size), "--lr", str(options.lr),
        "--weight-decay", str(options.weight_decay), "--label-smoothing", "0",
        "--seed", str(seed), "--runs-dir", options.out,
        *[f"--space-option={option}" for option in options.space_option], *extra, *resume,
    ]
    run_nas(args)
    # A resumed training only counts its last leg here; the bench records the first full one.
    cpu_seconds = children_cpu_seconds() - before
    cpu_file.write_text(json.dumps({"cpu_seconds": cpu_seconds, "resumed": bool(resume)}))
    return cpu_seconds


def rank(run: str, options: argparse.Namespace, *, seed: int
         ) -> dict[str, Any]:
    # fewer validation images: another tag, so the full-split scores are kept beside
    val = ([] if options.val_images is None else
           ["--val-images", str(options.val_images), "--tag", f"nb201-v{options.val_images}"])
    out = run_nas([
        "rank", "--run", run, "--truth", options.truth, "--truth-column", "cifar10_test_top1",
        "--samples", str(options.samples), "--seed", str(seed), "--threads", "1",
        "--runs-dir", options.out, "--json", *val,
    ])
    return dict(json.loads(out))


def paired_tau_gain(
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], *, resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean over `pairs` of tau(few-shot) - tau(one-shot) on the same cells, with a 95%
    bootstrap interval that resamples the cells (jointly in every pair: the same cells)."""
    tables = []
    for one_shot, few_shot in pairs:
        rows = {r["arch_id"]: r for r in one_shot["subnets"]}
        ids = sorted(set(rows) & {r["arch_id"] for r in few_shot["subnets"]})
        other = {r["arch_id"]: r for r in few_shot["subnets"]}
        tables.append(np.array([[rows[i]["truth"], rows[i]["supernet"], other[i]["supernet"]]
                                for i in ids]))

    def gain(index: np.ndarray | None) -> float:
        values = []
        for table in tables:
            t = table if index is None else table[index % len(table)]
            values.append(stats.kendalltau(t[:, 0], t[:, 2]).statistic
                          - stats.kendalltau(t[:, 0], t[:, 1]).statistic)
        return float(np.nanmean(values))

    rng = np.random.default_rng(seed)
    size = min(len(t) for t in tables)
    draws = [gain(rng.integers(0, size, size)) for _ in range(resamples)]
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return gain(None), float(low), float(high)


def compare_paired(
    epochs: int, options: argparse.Namespace, shape: str, *, variant: str, suffix: str,
    extra: Sequence[str] = (), sampler: str | None = None,
) -> None:
    """The baseline supernet against `variant` (same steps; `suffix` names its runs, `extra`
    and `sampler` train it), per seed, ranked on the same cells and paired."""
    pairs, cpu = [], {"baseline": 0.0, variant: 0.0}
    for seed in options.seed_list:
        base = f"nb201-{options.method}-{shape}-e{epochs}-s{seed}"
        runs = {"baseline": (base, (), None), variant: (f"{base}-{suffix}", extra, sampler)}
        reports = {}
        for kind, (run, run_extra, run_sampler) in runs.items():
            cpu[kind] += train_once(run, epochs, options, seed=seed, extra=run_extra,
                                    sampler=run_sampler)
            reports[kind] = rank(run, options, seed=options.rank_seed)
        one, other = (reports[k]["scores"]["supernet"]["kendall_tau"]["value"] for k in runs)
        gain, low, high = paired_tau_gain([(reports["baseline"], reports[variant])])
        log(f"{epochs:>6} seed {seed}: baseline tau {one:.3f}, {variant} {other:.3f}, "
            f"gain {gain:+.3f} [{low:+.3f}, {high:+.3f}]")
        pairs.append((reports["baseline"], reports[variant]))
    gain, low, high = paired_tau_gain(pairs)
    log(f"{epochs:>6} mean gain over {len(pairs)} seeds: {gain:+.3f} [{low:+.3f}, {high:+.3f}]")
    emit(f"nb201_{variant.replace('-', '_')}_tau_gain_e{epochs}", gain, "kendall_tau_delta",
         interval=[low, high], seeds=options.seed_list, n=pairs[0][0]["n"],
         per_seed=[{"baseline": b["scores"]["supernet"]["kendall_tau"]["value"],
                    variant: v["scores"]["supernet"]["kendall_tau"]["value"]} for b, v in pairs],
         train_cpu_seconds={k: round(v) for k, v in cpu.items()},
         space_options=options.space_option, val_images=options.val_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 as imagefolder (train/test)")
    parser.add_argument("--truth", required=True, help="nb201_accuracy.csv of ../shared/data")
    parser.add_argument("--budgets", default="1,4,16", help="training epochs, comma-separated")
    parser.add_argument("--out", default="runs-bench-ranking", help="runs folder of the bench")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--method", default="spos")
    parser.add_argument("--sampler", default="uniform",
                        help="uniform, complexity or pada (path and data importance sampling)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None,
                        help="training seeds, comma-separated (default: --seed)")
    parser.add_argument("--rank-seed", type=int, default=0,
                        help="paired comparisons: seed of the ranked cells (the same for all)")
    parser.add_argument("--few-shot", type=int, default=None,
                        help="compare one-shot against `--few-shot K` supernets (issue 20)")
    parser.add_argument("--few-shot-warmup", type=int, default=None,
                        help="epochs before the split (default: half the budget)")
    parser.add_argument("--paired-sampler", default=None,
                        help="compare --sampler (uniform) against this sampler (e.g. pada), "
                             "paired per seed on the same cells (issue 20)")
    parser.add_argument("--val-images", type=int, default=None,
                        help="score each cell on the first N validation images (nas rank "
                             "--val-images; another tag than the full split)")
    parser.add_argument("--space-option", action="append", default=[],
                        help="KEY=VALUE for the nb201 space, repeatable (e.g. cells_per_stage=1)")
    options = parser.parse_args()
    options.seed_list = [int(s) for s in (options.seeds or str(options.seed)).split(",")]
    shape = "-".join(option.replace("=", "") for option in options.space_option) or "default"
    if options.few_shot is not None or options.paired_sampler is not None:
        for epochs in (int(text) for text in options.budgets.split(",")):
            if options.few_shot is not None:
                warmup = ([] if options.few_shot_warmup is None
                          else ["--few-shot-warmup", str(options.few_shot_warmup)])
                compare_paired(epochs, options, shape, variant=f"few-shot{options.few_shot}",
                               suffix=f"fs{options.few_shot}",
                               extra=["--few-shot", str(options.few_shot), *warmup])
            if options.paired_sampler is not None:
                compare_paired(epochs, options, shape, variant=options.paired_sampler,
                               suffix=options.paired_sampler, sampler=options.paired_sampler)
        return
    log(f"{'epochs':>6} {'train CPU s':>12} {'supernet tau':>22} {'params tau':>11}")
    for epochs in (int(text) for text in options.budgets.split(",")):
        sampler = "" if options.sampler == "uniform" else f"-{options.sampler}"  # older names
        run = f"nb201-{options.method}{sampler}-{shape}-e{epochs}-s{options.seed}"
        cpu_seconds = train_once(run, epochs, options, seed=options.seed)
        report = rank(run, options, seed=options.seed)
        supernet, params = report["scores"]["supernet"], report["scores"]["params"]
        tau = supernet["kendall_tau"]
        log(f"{epochs:>6} {cpu_seconds:>12.0f} {tau['value']:>8.3f} "
            f"[{tau['low']:.2f}, {tau['high']:.2f}] {params['kendall_tau']['value']:>11.3f}")
        emit(f"nb201_supernet_tau_e{epochs}", tau["value"], "kendall_tau",
             baseline="params", baseline_value=params["kendall_tau"]["value"], n=report["n"],
             interval=[tau["low"], tau["high"]], train_cpu_seconds=round(cpu_seconds),
             spearman=supernet["spearman"]["value"],
             precision_top10=supernet["precision_top10"]["value"],
             space_options=options.space_option, sampler=options.sampler)


if __name__ == "__main__":
    main()
