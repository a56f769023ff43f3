"""Does an ofa-mbv3 supernet rank its subnets right? Against subnets trained alone.

No table of stand-alone accuracies exists for ofa-mbv3 on CIFAR-10, so the truth is made here:
`nas train-supernet --space ofa-mbv3` on the CIFAR-10 JPEG folders (32 px), then
`nas rank --run R --standalone K` trains K subnets (stratified by size) alone with the run's data
and options and ranks them by inherited accuracy (BN recalibrated), the parameter count and
MACs. Children run the commands a user runs with one torch thread; CPU seconds are theirs.

    tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp           # /tmp/cifar10-jpg/{train,test}
    python bench/bench_ranking_ofa.py --data-dir /tmp/cifar10-jpg --epochs 12 \
        --standalone 24 --standalone-epochs 12 --out /tmp/bench-rank-ofa

Resumable: the supernet trains once (a killed training resumes), and `nas rank` keeps every
finished stand-alone training. With 24 subnets the bootstrap interval of tau is about +-0.25:
enough to tell a supernet that ranks from one that does not, not to separate close scorers.
Quick check of the plumbing: `--dataset digits --epochs 1 --standalone 6 --standalone-steps 20`.
stdout: one JSON line (bench/README.md): the supernet's tau, ratio against the parameter count's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import children_cpu_seconds, emit, log, run_nas  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="imagefolder")
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 as imagefolder (train/test)")
    parser.add_argument("--epochs", type=int, default=12, help="supernet training epochs")
    parser.add_argument("--standalone", type=int, default=24, help="subnets trained alone")
    parser.add_argument("--standalone-epochs", type=int, default=12)
    parser.add_argument("--standalone-steps", type=int, default=None, help="cap (quick checks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs-bench-ranking-ofa", help="runs folder of the bench")
    options = parser.parse_args()
    run = f"ofa-mbv3-{options.dataset}-e{options.epochs}-s{options.seed}"
    data = ["--data-dir", options.data_dir] if options.data_dir else []
    before = children_cpu_seconds()
    if not (Path(options.out) / run / "supernet" / "weights.safetensors").is_file():
        resume = (Path(options.out) / run / "supernet" / "checkpoint.pt").is_file()
        run_nas(["train-supernet", "--run", run, "--space", "ofa-mbv3",
                 "--dataset", options.dataset, *data, "--image-size", "32",
                 "--epochs", str(options.epochs), "--seed", str(options.seed), "--threads", "1",
                 "--runs-dir", options.out, *(["--resume"] if resume else []), "--quiet"])
    steps = ([] if options.standalone_steps is None
             else ["--standalone-steps", str(options.standalone_steps)])
    report = json.loads(run_nas([
        "rank", "--run", run, "--standalone", str(options.standalone), "--standalone-epochs",
        str(options.standalone_epochs), *steps, "--seed", str(options.seed), "--threads", "1",
        "--runs-dir", options.out, "--json",
    ]))
    supernet, params = report["scores"]["supernet"], report["scores"]["params"]
    tau, base = supernet["kendall_tau"], params["kendall_tau"]["value"]
    log(f"{report['n']} subnets trained alone: supernet tau {tau['value']:.3f} "
        f"[{tau['low']:.2f}, {tau['high']:.2f}], params tau {base:.3f}; "
        f"CPU s of this call's commands: {children_cpu_seconds() - before:.0f}")
    emit("ofa_mbv3_supernet_tau_standalone", tau["value"], "kendall_tau", baseline="params",
         baseline_value=base, n=report["n"], interval=[tau["low"], tau["high"]],
         supernet_epochs=options.epochs, standalone_epochs=options.standalone_epochs,
         cpu_seconds=round(children_cpu_seconds() - before))


if __name__ == "__main__":
    main()
