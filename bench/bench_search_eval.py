"""Supernet evaluation in search: seconds per subnet, and the ranking with fewer BN batches.

On a trained run (default: the quickstart's), for `--subnets` subnets drawn with `--seed`:

- seconds per subnet of the old path (`evaluate_subnet`: normalise, resize and recalibrate
  from scratch for every subnet) and of `TrainedSupernet.evaluate` (inputs made once per
  resolution), both with the run's calibration batches;
- Kendall tau between the subnets' val top-1 with each of `--batches` calibration batches and
  with the run's own number (the reference), with its 95% bootstrap interval.

    python bench/bench_search_eval.py --run quickstart --runs-dir runs --threads 1

stdout: JSON lines (`search_eval.seconds_per_subnet.*`, `search_eval.tau.batchesN`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit, log  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="quickstart")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--subnets", type=int, default=30)
    parser.add_argument("--batches", default="1,2,3,5")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from nas.artifacts import RunDir
    from nas.rank.metrics import ranking_metrics
    from nas.supernet.evaluate import evaluate_subnet
    from nas.supernet.trained import TrainedSupernet

    torch.set_num_threads(args.threads)
    trained = TrainedSupernet.load(RunDir(Path(args.runs_dir), args.run), "cpu")
    rng = np.random.default_rng(args.seed)
    archs = [trained.space.sample(rng) for _ in range(args.subnets)]
    reference = trained.settings.calibration_batches
    _ = trained.splits
    log(f"{args.run}: {args.subnets} subnets, batch {args.batch_size}, reference "
        f"{reference} calibration batches")

    start = time.perf_counter()
    for arch in archs:
        evaluate_subnet(trained.net, arch, trained.splits, batch_size=args.batch_size,
                        calibration_batches=reference, seed=trained.settings.seed)
    before = (time.perf_counter() - start) / len(archs)
    # the reference against itself with other calibration images: how far any two
    # calibrations agree (the most a smaller number of batches can be asked for)
    other_images = np.asarray([
        evaluate_subnet(trained.net, arch, trained.splits, batch_size=args.batch_size,
                        calibration_batches=reference, seed=trained.settings.seed + 1)["top1"]
        for arch in archs])

    def scores(batches: int) -> tuple[np.ndarray, float]:
        model = trained.with_calibration(batches)
        model.evaluate(archs[0], batch_size=args.batch_size)  # inputs of the first resolution
        began = time.perf_counter()
        top1 = [model.evaluate(a, batch_size=args.batch_size)["top1"] for a in archs]
        return np.asarray(top1), (time.perf_counter() - began) / len(archs)

    truth, after = scores(reference)
    emit(f"search_eval.seconds_per_subnet.batches{reference}", after, "s",
         baseline="evaluate_subnet per subnet (before)", baseline_value=before,
         higher_is_better=False)
    log(f"seconds per subnet, {reference} batches: before {before:.3f}, after {after:.3f}")
    floor = ranking_metrics(truth, {"other": other_images}, rng=np.random.default_rng(args.seed))
    tau = floor["other"].kendall_tau
    emit(f"search_eval.tau.batches{reference}_other_images", tau.value, "kendall tau",
         reference_batches=reference, low=round(tau.low, 3), high=round(tau.high, 3))
    log(f"{reference} batches, other calibration images: tau {tau.value:.3f} "
        f"[{tau.low:.3f}, {tau.high:.3f}] (the noise floor)")
    for batches in (int(b) for b in args.batches.split(",")):
        top1, seconds = scores(batches)
        metrics = ranking_metrics(truth, {"fewer": top1}, rng=np.random.default_rng(args.seed))
        tau = metrics["fewer"].kendall_tau
        emit(f"search_eval.tau.batches{batches}", tau.value, "kendall tau",
             reference_batches=reference, low=round(tau.low, 3), high=round(tau.high, 3),
             seconds_per_subnet=round(seconds, 4),
             max_abs_top1_change=round(float(np.max(np.abs(top1 - truth))), 3))
        log(f"{batches} batches: tau {tau.value:.3f} [{tau.low:.3f}, {tau.high:.3f}], "
            f"{seconds:.3f} s per subnet")


if __name__ == "__main__":
    main()
