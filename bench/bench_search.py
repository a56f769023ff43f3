"""Search benchmark: hypervolume vs. evaluations per algorithm, and the machinery's cost.

Tabular oracle: the real NAS-Bench-201 table cannot be downloaded here, so the table is the
deterministic synthetic one of `search_spaces.nb201.synthetic` (accuracy and latency as seeded
nonlinear functions of the cell's ops; see that module). Objectives: top-1 (maximised) and
latency (minimised), both normalised to [0, 1] over the whole table; the hypervolume reference
point is (worst top-1, worst latency), so 1.0 would be a single perfect cell, and the table's
true front gives the best reachable value.

Figures (JSON lines on stdout, diagnostics on stderr):
- `hv.<algorithm>.<budget>`: mean hypervolume over seeds after `budget` evaluations;
- `evals_to_random2000.<algorithm>`: evaluations an algorithm needs (median over seeds) to
  reach the mean hypervolume random search has after 2,000 (target for our default: <= 500);
- `constrained.best_top1.<algorithm>.<budget>`: best top-1 under a latency bound (the median
  cell's latency), mean over seeds: what aging evolution is for;
- `machinery_ms_per_eval.*`: wall time per evaluation of the search itself with predictor-like
  objectives (a linear model on `space.encode`), no study, vs. DyNAS-T's 0.33 ms (its NSGA-II,
  population 50, 200 evaluations); and with the default SQLite study, for reference.

    python bench/bench_search.py [--seeds 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log  # noqa: E402
from nas.search.base import Candidate, Objective, costs, pareto_front  # noqa: E402
from nas.search.hypervolume import hypervolume_2d  # noqa: E402
from nas.search.optimize import run_search  # noqa: E402
from nas.search.oracle import Oracle  # noqa: E402
from search_spaces.nb201 import NB201Space  # noqa: E402
from search_spaces.nb201.synthetic import synthetic_table  # noqa: E402

CHECKPOINTS = (50, 100, 200, 300, 500, 1000, 2000)
DYNAST_MS_PER_EVAL = 0.33


class Scale:
    """Normalises (top1, latency) to costs in [0, 1]^2 over the whole table."""

    def __init__(self, rows: list[dict]) -> None:
        top1 = np.array([r["top1"] for r in rows])
        lat = np.array([r["latency_ms"] for r in rows])
        self.t_lo, self.t_hi, self.l_lo, self.l_hi = top1.min(), top1.max(), lat.min(), lat.max()

    def hv(self, candidates: list[Candidate], objectives: list[Objective]) -> float:
        front = pareto_front(candidates, objectives)
        if not front:
            return 0.0
        raw = costs(front, objectives)  # (-top1, latency)
        pts = np.column_stack([
            (-raw[:, 0] - self.t_hi) / (self.t_lo - self.t_hi),  # 0 best, 1 worst
            (raw[:, 1] - self.l_lo) / (self.l_hi - self.l_lo),
        ])
        return hypervolume_2d(pts, np.array([1.0, 1.0]))


def curve(history: list[Candidate], objectives: list[Objective], scale: Scale,
          points: list[int]) -> dict[int, float]:
    return {n: scale.hv(history[:n], objectives) for n in points if n <= len(history)}


def evals_to_reach(history: list[Candidate], objectives: list[Objective], scale: Scale,
                   target: float, step: int = 25) -> int | None:
    for n in range(step, len(history) + 1, step):
        if scale.hv(history[:n], objectives) >= target:
            return n
    return None


def hypervolume_study(args: argparse.Namespace, oracle: Oracle, space: NB201Space,
                      scale: Scale, rows: list[dict]) -> None:
    objectives = [oracle.objective("top1", "maximize", cheap=False),
                  oracle.objective("latency_ms", "minimize", cheap=True)]
    all_cands = [Candidate(r["arch"], str(i), {"top1": r["top1"], "latency_ms": r["latency_ms"]})
                 for i, r in enumerate(rows)]
    best = scale.hv(all_cands, objectives)
    emit("hv.true_front", best, "hypervolume (normalised)")
    budgets = {"random": 2000, "nsga2": 2000, "evolution": 2000, "optuna-nsga2": 2000,
               "optuna-tpe": 500}
    if args.quick:
        budgets = {k: min(v, 500) for k, v in budgets.items()}
    if args.algorithms:
        keep = {"random", *args.algorithms.split(",")}  # random sets the target
        budgets = {k: v for k, v in budgets.items() if k in keep}
    histories: dict[str, list[list[Candidate]]] = {}
    for name, budget in budgets.items():
        histories[name] = []
        for seed in range(args.seeds if name != "optuna-tpe" else min(args.seeds, 3)):
            start = time.perf_counter()
            result = run_search(space, objectives, algorithm=name, budget=budget, seed=seed,
                                population=args.population)
            log(f"{name} seed {seed}: {budget} evals in {time.perf_counter() - start:.1f} s")
            histories[name].append(result.history)
        for n in CHECKPOINTS:
            values = [curve(h, objectives, scale, [n]).get(n) for h in histories[name]]
            values = [v for v in values if v is not None]
            if values:
                emit(f"hv.{name}.{n}", float(np.mean(values)), "hypervolume (normalised)",
                     std=round(float(np.std(values)), 5), seeds=len(values),
                     share_of_true_front=round(float(np.mean(values)) / best, 4))
    top = max(budgets["random"], 0)
    target = float(np.mean([scale.hv(h[:top], objectives) for h in histories["random"]]))
    log(f"target: random search's mean hypervolume after {top} evaluations = {target:.4f}")
    for name, runs in histories.items():
        reached = [evals_to_reach(h, objectives, scale, target) for h in runs]
        # a seed that never reaches the target counts as one more than its budget
        padded = [r if r is not None else len(h) + 1 for r, h in zip(reached, runs, strict=True)]
        emit(f"evals_to_random{top}.{name}", float(np.median(padded)), "evaluations",
             baseline=f"random search at {top}", baseline_value=float(top),
             higher_is_better=False, per_seed=reached,
             reached=f"{sum(r is not None for r in reached)}/{len(runs)}")


def machinery(args: argparse.Namespace, space: NB201Space) -> None:
    """Time per evaluation of the search itself, with microsecond-cheap predictor objectives."""
    rng = np.random.default_rng(0)
    w_acc, w_lat = rng.standard_normal(space.dim), rng.random(space.dim)

    def linear(weights: np.ndarray) -> object:
        def evaluate(archs: object) -> np.ndarray:
            return np.stack([space.encode(a) for a in archs]) @ weights  # type: ignore[attr-defined]

        return evaluate

    objectives = [Objective("top1", "maximize", linear(w_acc), cheap=False),
                  Objective("latency_ms", "minimize", linear(w_lat), cheap=True)]
    for name, budget in (("nsga2", 200), ("nsga2", 2000), ("evolution", 2000),
                         ("optuna-nsga2", 200), ("random", 200)):
        times, cpu = [], []
        for seed in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run_search(space, objectives, algorithm=name, budget=budget, seed=seed,
                                population=50)
            times.append((time.perf_counter() - start) / len(result.history))
            cpu.append((time.process_time() - start_cpu) / len(result.history))
        # CPU time too: on a shared machine it is far less inflated by other processes
        emit(f"machinery_ms_per_eval.{name}.pop50.{budget}", 1e3 * float(np.median(times)),
             "ms/evaluation", baseline="DyNAS-T NSGA-II (pop 50, 200 evals)",
             baseline_value=DYNAST_MS_PER_EVAL, higher_is_better=False, storage="none",
             cpu_ms_per_eval=round(1e3 * float(np.median(cpu)), 4))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_search(space, objectives, algorithm="nsga2", budget=100, seed=0,
                            population=50, storage=f"sqlite:///{tmp}/study.db")
        per = (time.perf_counter() - start) / len(result.history)
        emit("machinery_ms_per_eval.nsga2.pop50.100.sqlite", 1e3 * per, "ms/evaluation",
             storage="sqlite (every evaluation is an Optuna trial)")


def constrained_study(args: argparse.Namespace, oracle: Oracle, space: NB201Space,
                      rows: list[dict]) -> None:
    """Best top-1 under a latency bound (the median cell's latency) after N evaluations."""
    from nas.search.base import Constraint

    bound = float(np.median([r["latency_ms"] for r in rows]))
    best = max(r["top1"] for r in rows if r["latency_ms"] <= bound)
    emit("constrained.best_possible_top1", best, "%", latency_max_ms=round(bound, 4))
    objectives = [oracle.objective("top1", "maximize", cheap=False),
                  oracle.objective("latency_ms", "minimize", cheap=True)]
    for name in ("random", "evolution", "nsga2"):
        for budget in (100, 300):
            tops = []
            for seed in range(args.seeds):
                result = run_search(space, objectives, algorithm=name, budget=budget, seed=seed,
                                    population=args.population,
                                    constraints=[Constraint("latency_ms", max=bound)])
                tops.append(max(c.values["top1"] for c in result.front))
            emit(f"constrained.best_top1.{name}.{budget}", float(np.mean(tops)), "%",
                 std=round(float(np.std(tops)), 4), gap_to_best=round(best - np.mean(tops), 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="budgets capped at 500")
    parser.add_argument("--skip-hv", action="store_true")
    parser.add_argument("--algorithms", default="", help="comma-separated subset (+ random)")
    parser.add_argument("--skip-machinery", action="store_true")
    parser.add_argument("--skip-constrained", action="store_true")
    args = parser.parse_args()
    space = NB201Space()
    rows = synthetic_table(0)
    log("table: synthetic NAS-Bench-201-like (seed 0), 15,625 cells; not the real benchmark")
    if not args.skip_machinery:
        machinery(args, space)
    if not args.skip_constrained:
        constrained_study(args, Oracle(rows, space), space, rows)
    if not args.skip_hv:
        hypervolume_study(args, Oracle(rows, space), space, Scale(rows), rows)


if __name__ == "__main__":
    main()
