"""Zero-cost proxies on NAS-Bench-201 / CIFAR-10: Kendall tau of each against the real table.

`nas rank` without a run scores `--samples` cells (stratified by size, drawn from the table)
with every proxy at initialisation on one batch of 64 CIFAR-10 training images, then twice:

1. every cell judged: each proxy, `combined` (fixed, no labels) and the parameter count;
2. `--labels` cells labelled: `parzc` fitted on them, every scorer judged on the other cells.

    tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp           # /tmp/cifar10-jpg/{train,test}
    python bench/bench_proxies.py --data-dir /tmp/cifar10-jpg \
        --truth ../shared/data/nb201/nb201_accuracy.csv --samples 300 --out /tmp/bench-proxies

One torch thread, in a child process; resumable (`nas rank` keeps every score in its folder, so
a second run, or one with more proxies, computes only what is missing). stdout: one JSON line
per scorer (bench/README.md): tau with its interval, `baseline` the parameter count's tau on the
same cells, seconds per cell; the table goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import children_cpu_seconds, emit, log, run_nas  # noqa: E402

PROXIES = "naswot,synflow,jacov,snip,combined"


def rank(options: argparse.Namespace, env: dict[str, str], *extra: str) -> dict[str, Any]:
    import json

    out = run_nas([
        "rank", "--space", "nb201", "--dataset", "imagefolder", "--data-dir", options.data_dir,
        "--image-size", "32", "--truth", options.truth, "--truth-column", "cifar10_test_top1",
        "--samples", str(options.samples), "--seed", str(options.seed), "--threads", "1",
        "--runs-dir", options.out, "--json", *extra,
    ], env)
    return dict(json.loads(out))


def show(report: dict[str, Any], label: str) -> None:
    params = report["scores"]["params"]["kendall_tau"]["value"]
    seconds = report["seconds_per_subnet"]
    # CPU seconds: the cost on one thread, whatever else the machine runs (older scores: none)
    cpu = report.get("cpu_seconds_per_subnet", {})
    for name, score in report["scores"].items():
        tau = score["kendall_tau"]
        log(f"{label:>9} {name:>9} {tau['value']:>7.3f} [{tau['low']:.2f}, {tau['high']:.2f}] "
            f"{seconds.get(name, 0.0):>8.3f} {cpu.get(name, float('nan')):>8.3f}")
        emit(f"nb201_proxy_tau.{label}.{name}", tau["value"], "kendall_tau",
             baseline="params", baseline_value=params, n=report["n"],
             interval=[tau["low"], tau["high"]], seconds_per_cell=seconds.get(name, 0.0),
             cpu_seconds_per_cell=cpu.get(name),
             spearman=score["spearman"]["value"],
             precision_top10=score["precision_top10"]["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 as imagefolder (train/test)")
    parser.add_argument("--truth", required=True, help="nb201_accuracy.csv of ../shared/data")
    parser.add_argument("--out", default="runs-bench-proxies", help="runs folder of the bench")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--labels", type=int, default=50, help="cells parzc is fitted on")
    parser.add_argument("--proxies", default=PROXIES, help="scored in the first pass")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAS_PROGRESS_SECONDS": "60"}
    before = children_cpu_seconds()
    log(f"{'judged':>9} {'scorer':>9} {'tau':>7} {'interval':>12} {'s / cell':>8} {'CPU s':>8}")
    show(rank(options, env, "--proxies", options.proxies), "all")
    show(rank(options, env, "--proxies", f"{options.proxies},parzc", "--labels",
              str(options.labels)), "held-out")
    log(f"child CPU seconds: {children_cpu_seconds() - before:.0f} "
        f"(a rerun only reads the scores back)")


if __name__ == "__main__":
    main()
