"""Does the supernet rank subnets right? NB201 supernets at several CPU budgets against the table.

For each training budget (epochs) one NB201 supernet is trained on the CIFAR-10 JPEG folders
with `nas train-supernet`, then `nas rank` scores `--samples` cells (stratified by size, drawn
from the NAS-Bench-201 table) by inherited accuracy (BN recalibrated) and by the parameter
count, the trivial baseline. Everything goes through the commands a user runs, in child
processes with one torch thread, so the CPU seconds counted are those of the children.

    tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp           # /tmp/cifar10-jpg/{train,test}
    python bench/bench_ranking.py --data-dir /tmp/cifar10-jpg \
        --truth ../shared/data/nb201/nb201_accuracy.csv --budgets 1,4,16 --out /tmp/bench-rank

Resumable: a budget whose supernet is trained is not trained again (a killed training resumes
with `--resume`), and `nas rank` keeps its scores per tag. Extra `--space-option KEY=VALUE`
shrink the supernet for a CPU budget (e.g. cells_per_stage=1). stdout: one JSON line per
budget (bench/README.md): the supernet's Kendall tau, ratio against the parameter count's tau,
training CPU seconds; the table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import emit, log  # noqa: E402


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nas(args: list[str], env: dict[str, str]) -> str:
    """Run one `nas` command in a child process; its stderr (progress lines) passes through."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, stdout=subprocess.PIPE, text=True,
        check=False, cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise SystemExit(f"nas {' '.join(args[:3])} ... failed with exit code {done.returncode}")
    return done.stdout


def train_once(run: str, epochs: int, options: argparse.Namespace, env: dict[str, str]) -> float:
    """Train the budget's supernet unless it is trained; returns the training CPU seconds."""
    run_dir = Path(options.out) / run
    cpu_file = run_dir / "bench_train_cpu.json"
    if cpu_file.is_file():
        return float(json.loads(cpu_file.read_text())["cpu_seconds"])
    resume = ["--resume"] if (run_dir / "supernet" / "checkpoint.pt").is_file() else []
    before = children_cpu_seconds()
    args = [
        "train-supernet", "--run", run, "--space", "nb201", "--method", options.method,
        "--dataset", "imagefolder", "--data-dir", options.data_dir, "--image-size", "32",
        "--epochs", str(epochs), "--batch-size", str(options.batch_size), "--lr", str(options.lr),
        "--weight-decay", str(options.weight_decay), "--label-smoothing", "0",
        "--seed", str(options.seed), "--runs-dir", options.out,
        *[f"--space-option={option}" for option in options.space_option], *resume,
    ]
    nas(args, env)
    # A resumed training only counts its last leg here; the bench records the first full one.
    cpu_seconds = children_cpu_seconds() - before
    cpu_file.write_text(json.dumps({"cpu_seconds": cpu_seconds, "resumed": bool(resume)}))
    return cpu_seconds


def rank(run: str, options: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    out = nas([
        "rank", "--run", run, "--truth", options.truth, "--truth-column", "cifar10_test_top1",
        "--samples", str(options.samples), "--seed", str(options.seed), "--threads", "1",
        "--runs-dir", options.out, "--json",
    ], env)
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 as imagefolder (train/test)")
    parser.add_argument("--truth", required=True, help="nb201_accuracy.csv of ../shared/data")
    parser.add_argument("--budgets", default="1,4,16", help="training epochs, comma-separated")
    parser.add_argument("--out", default="runs-bench-ranking", help="runs folder of the bench")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--method", default="spos")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space-option", action="append", default=[],
                        help="KEY=VALUE for the nb201 space, repeatable (e.g. cells_per_stage=1)")
    options = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAS_PROGRESS_SECONDS": "60"}
    shape = "-".join(option.replace("=", "") for option in options.space_option) or "default"
    log(f"{'epochs':>6} {'train CPU s':>12} {'supernet tau':>22} {'params tau':>11}")
    for epochs in (int(text) for text in options.budgets.split(",")):
        run = f"nb201-{options.method}-{shape}-e{epochs}-s{options.seed}"
        cpu_seconds = train_once(run, epochs, options, env)
        report = rank(run, options, env)
        supernet, params = report["scores"]["supernet"], report["scores"]["params"]
        tau = supernet["kendall_tau"]
        log(f"{epochs:>6} {cpu_seconds:>12.0f} {tau['value']:>8.3f} "
            f"[{tau['low']:.2f}, {tau['high']:.2f}] {params['kendall_tau']['value']:>11.3f}")
        emit(f"nb201_supernet_tau_e{epochs}", tau["value"], "kendall_tau",
             baseline="params", baseline_value=params["kendall_tau"]["value"], n=report["n"],
             interval=[tau["low"], tau["high"]], train_cpu_seconds=round(cpu_seconds),
             spearman=supernet["spearman"]["value"],
             precision_top10=supernet["precision_top10"]["value"],
             space_options=options.space_option)


if __name__ == "__main__":
    main()
