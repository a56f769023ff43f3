"""Workers on one study: throughput, duplicates and hypervolume for 1, 2, 4 and 8 workers.

Runs the real command, `nas search --oracle FILE --space nb201 --workers N`, on the
NAS-Bench-201 table (`../shared/data/nb201/nb201_accuracy.csv` beside the repository: CIFAR-10
test top-1, and the Pixel 3 latency column of `nb201_latency_ms.csv` when it is there, else the
cell's parameter count). Every evaluation sleeps `--delay` seconds (`oracle_delay`), standing
in for a supernet evaluation, so that the machine's two cores do not bound the workers. Each
worker count runs on SQLite (the search folder's study.db, WAL) and on a throw-away PostgreSQL
server (`nas.testing.postgres`, skipped with the reason when it cannot start).

Figures (JSON lines on stdout, diagnostics on stderr), per storage S and worker count N:
- `workers.S.N.throughput`: scored subnets per second between the first and the last trial
  written (steady state; ratio against one worker on the same storage);
- `workers.S.N.wall_throughput`: budget / wall time of the whole command (process start-up,
  imports and the final reads included);
- `workers.S.N.duplicates`: complete trials minus distinct subnets (goal 0), and `trials`;
- `workers.S.N.hv.K`: normalised hypervolume of the first K trials in completion order.

    python bench/bench_workers.py [--workers 1,2,4,8] [--budget 200] [--delay 1.0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import emit, log  # noqa: E402
from nas.search.hypervolume import hypervolume_2d  # noqa: E402
from nas.testing.postgres import temporary_postgres, unavailable  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "nb201"
LATENCY_COLUMN = "pixel3"


def make_oracle(path: Path) -> tuple[str, list[tuple[float, float]]]:
    """Write the JSONL table; returns the second objective's name and every (top1, cost)."""
    latency: dict[str, float] = {}
    if (DATA / "nb201_latency_ms.csv").is_file():
        with (DATA / "nb201_latency_ms.csv").open() as handle:
            latency = {r["arch"]: float(r[LATENCY_COLUMN]) for r in csv.DictReader(handle)}
    second = "latency_ms" if latency else "params"
    points = []
    with (DATA / "nb201_accuracy.csv").open() as handle, path.open("w") as out:
        for row in csv.DictReader(handle):
            record = {"arch": row["arch"], "top1": float(row["cifar10_test_top1"])}
            if latency:
                record["latency_ms"] = latency[row["arch"]]
                points.append((record["top1"], record["latency_ms"]))
            out.write(json.dumps(record) + "\n")
    return second, points


class Scale:
    """Hypervolume of (top1 max, cost min) normalised to [0, 1]^2 over the whole table."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        array = np.array(points) if points else np.array([[0.0, 0.0], [100.0, 1.0]])
        self.lo, self.hi = array.min(axis=0), array.max(axis=0)

    def hv(self, points: list[tuple[float, float]]) -> float:
        if not points:
            return 0.0
        array = np.array(points)
        costs = np.column_stack([
            (self.hi[0] - array[:, 0]) / (self.hi[0] - self.lo[0]),
            (array[:, 1] - self.lo[1]) / max(self.hi[1] - self.lo[1], 1e-12),
        ])
        return hypervolume_2d(costs, np.array([1.0, 1.0]))


def run(args: argparse.Namespace, oracle: Path, second: str, storage: str | None,
        workers: int, folder: Path) -> tuple[float, optuna.Study]:
    """One `nas search`; returns its wall time and the study."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "delay.yaml"
    config.write_text(f"oracle_delay: {args.delay}\n")
    tag = f"w{workers}"
    command = [sys.executable, "-m", "cli", "search", "--oracle", str(oracle), "--space",
               "nb201", "--objectives", f"top1,{second}", "--budget", str(args.budget),
               "--population", str(args.population), "--workers", str(workers), "--tag", tag,
               "--config", str(config), "--runs-dir", str(folder / "runs"), "--json"]
    if storage is not None:
        command += ["--storage", storage]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"nas search failed: {done.stderr[-2000:]}")
    url = storage or f"sqlite:///{folder / 'runs' / 'oracle-nb201' / 'search' / tag / 'study.db'}"
    return wall, optuna.load_study(study_name=tag, storage=url)


def report(name: str, args: argparse.Namespace, wall: float, study: optuna.Study,
           second: str, scale: Scale, baseline: float | None) -> float:
    trials = sorted(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)),
                    key=lambda t: t.datetime_complete)
    ids = [t.user_attrs["arch_id"] for t in trials]
    span = (trials[-1].datetime_complete - trials[0].datetime_complete).total_seconds()
    throughput = (len(trials) - 1) / span if span > 0 else float("nan")
    emit(f"{name}.throughput", throughput, "evaluations/s",
         **({"baseline": "1 worker", "baseline_value": baseline} if baseline else {}))
    emit(f"{name}.wall_throughput", args.budget / wall, "evaluations/s", wall_s=round(wall, 1))
    emit(f"{name}.duplicates", float(len(ids) - len(set(ids))), "trials", trials=len(ids),
         higher_is_better=False)
    points = [(t.user_attrs["metrics"]["top1"], t.user_attrs["metrics"][second])
              for t in trials]
    for k in sorted({50, 100, args.budget // 2, args.budget}):
        if k <= len(points):
            emit(f"{name}.hv.{k}", scale.hv(points[:k]), "hypervolume (normalised)")
    log(f"{name}: {len(ids)} trials ({len(ids) - len(set(ids))} duplicates), "
        f"{throughput:.2f}/s steady, {args.budget / wall:.2f}/s wall ({wall:.0f} s)")
    return throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--storages", default="sqlite,postgresql")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per evaluation")
    args = parser.parse_args()
    if not (DATA / "nb201_accuracy.csv").is_file():
        log(f"skipped: no NAS-Bench-201 table at {DATA / 'nb201_accuracy.csv'}")
        return
    counts = [int(n) for n in args.workers.split(",")]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        oracle = folder / "nb201.jsonl"
        second, points = make_oracle(oracle)
        scale = Scale(points)
        if points:
            emit("workers.hv.true_front", scale.hv(points), "hypervolume (normalised)")
        for kind in args.storages.split(","):
            if kind == "postgresql" and unavailable() is not None:
                log(f"postgresql skipped: {unavailable()}")
                continue
            baseline = None
            # one server; each worker count has its own study (tag), so each starts empty
            storage = stack.enter_context(temporary_postgres()) if kind == "postgresql" else None
            for n in counts:
                wall, study = run(args, oracle, second, storage, n, folder / f"{kind}{n}")
                value = report(f"workers.{kind}.{n}", args, wall, study, second, scale,
                               baseline)
                baseline = baseline or (value if n == 1 else None)


if __name__ == "__main__":
    main()
