"""Data-parallel supernet training: `torchrun --nproc-per-node 2 -m nas train-supernet` against
one process, on this machine's CPU cores (gloo).

Runs the real command three ways on the same global batch and steps:
- `1p1t`: one process, one thread (the baseline each rank is built from);
- `1p2t`: one process, two threads (what a user gets without torchrun);
- `2p1t`: torchrun, two processes of one thread each (the gradients of each step averaged).
Each variant runs `--rounds` times, the variants interleaved round by round, so a burst of
load on the shared machine hurts all of them alike.

Figures (JSON lines on stdout, diagnostics on stderr), per variant V:
- `torchrun.V.images_per_s`: steady-state training speed, the median of the per-step figures
  rank 0 logs (`metrics.jsonl`, `log_every: 1`) after `--warmup` steps, over all rounds; the
  ratio is against `1p1t`, and for `2p1t` also against `1p2t` (`ratio_vs_1p2t`);
- `torchrun.V.wall_s`: wall time of the whole command (start-up, imports, rendezvous, final
  evaluation and writes included), median over rounds; the ratio is against `1p1t`;
- `torchrun.V.cpu_s`: CPU time (user + system) of all the command's processes, median over
  rounds: what the variant costs, which other jobs on the machine do not change much (unlike
  the wall-clock figures); the ratio is against `1p1t`.

    python bench/bench_torchrun.py                         # ofa-mbv3, 32 px, batch 64
    python bench/bench_torchrun.py --small-input --steps 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import emit, log  # noqa: E402
from nas.testing.torchrun import torchrun_command, worker_env  # noqa: E402

VARIANTS = ("1p1t", "1p2t", "2p1t")
SETTINGS = "log_every: 1\nbn_calibration_batches: 1\neval_batch_size: 256\n"


def _arguments(args: argparse.Namespace, runs: Path, run: str) -> list[str]:
    options = ["train-supernet", "--run", run, "--runs-dir", str(runs), "--quiet",
               "--space", "ofa-mbv3", "--method", args.method, "--dataset", "synthetic",
               "--image-size", str(args.res), "--resolutions", str(args.res),
               "--batch-size", str(args.batch), "--epochs", "1000",
               "--max-steps", str(args.steps), "--checkpoint-every", str(args.steps),
               "--config", str(runs / "settings.yaml")]
    return [*options, "--small-input"] if args.small_input else options


def _command(variant: str, options: list[str]) -> tuple[list[str], dict[str, str]]:
    if variant == "2p1t":
        return torchrun_command("-m", "nas", "--", *options, nproc=2), worker_env()
    threads = variant[2]
    return [sys.executable, "-m", "nas", *options], worker_env(OMP_NUM_THREADS=threads)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # torchrun waits for its workers
    return usage.ru_utime + usage.ru_stime


def _run(
    variant: str, args: argparse.Namespace, runs: Path, run: str
) -> tuple[float, float, list[float]]:
    """(wall seconds, CPU seconds, per-step images/s after the warm-up) of one job."""
    command, env = _command(variant, _arguments(args, runs, run))
    started, cpu = time.perf_counter(), _cpu_seconds()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = (runs / run / "supernet" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(r["world_size"] == (2 if variant == "2p1t" else 1) for r in records)
    return wall, cpu, [r["images_per_s"] for r in records if r["step"] > args.warmup]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per job")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the speed")
    parser.add_argument("--rounds", type=int, default=3, help="jobs per variant (interleaved)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--res", type=int, default=32, help="image side in pixels")
    parser.add_argument("--method", default="sandwich", help="sandwich (4 subnets a step), spos")
    parser.add_argument("--small-input", action="store_true",
                        help="ofa-mbv3 with fewer stride-2 layers (~12x the MACs at 32 px)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of 1p1t,1p2t,2p1t (1p1t is the baseline)")
    args = parser.parse_args()
    variants = ["1p1t", *(v for v in args.variants.split(",") if v in VARIANTS[1:])]

    walls: dict[str, list[float]] = {v: [] for v in variants}
    speeds: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-torchrun-") as folder:
        runs = Path(folder)
        (runs / "settings.yaml").write_text(SETTINGS)
        for round_ in range(args.rounds):
            for variant in variants:
                loads.append(os.getloadavg()[0])
                wall, cpu, speed = _run(variant, args, runs, f"{variant}-{round_}")
                walls[variant].append(wall)
                cpus[variant].append(cpu)
                speeds[variant].extend(speed)
                log(f"round {round_} {variant}: {wall:.1f} s, {cpu:.1f} CPU s, "
                    f"{statistics.median(speed):.0f} images/s (load before: {loads[-1]:.1f})")

    base = "one process, one thread"
    speed = {v: statistics.median(speeds[v]) for v in variants}
    wall = {v: statistics.median(walls[v]) for v in variants}
    cpu = {v: statistics.median(cpus[v]) for v in variants}
    # other jobs on the machine take CPU shares from every variant: the load goes with the figures
    setting = {"space": "ofa-mbv3", "method": args.method, "res": args.res,
               "batch": args.batch, "steps": args.steps, "small_input": args.small_input,
               "load_1min": [min(loads), max(loads)]}
    for variant in variants:
        extra = {}
        if variant == "2p1t" and "1p2t" in speed:
            extra["ratio_vs_1p2t"] = round(speed["2p1t"] / speed["1p2t"], 3)
        emit(f"torchrun.{variant}.images_per_s", speed[variant], "images/s", baseline=base,
             baseline_value=speed["1p1t"], **extra, **setting)
        emit(f"torchrun.{variant}.wall_s", wall[variant], "s", baseline=base,
             baseline_value=wall["1p1t"], higher_is_better=False, **setting)
        emit(f"torchrun.{variant}.cpu_s", cpu[variant], "s", baseline=base,
             baseline_value=cpu["1p1t"], higher_is_better=False, **setting)
    log("variant  images/s  wall s  CPU s")
    for variant in variants:
        log(f"{variant:7} {speed[variant]:9.0f} {wall[variant]:7.1f} {cpu[variant]:6.1f}")


if __name__ == "__main__":
    main()
