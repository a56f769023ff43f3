"""Latency predictors: held-out accuracy against measured latency, profiling time, predictions/s.

Reads a profile made by `nas profile` (a run folder or `runs/_profiles/<space>-<R>px-<device>`)
and prints its quality figures, then times prediction on one core: from pre-computed features
(`LatencyModel.predict_features`, the vectorised path search uses in bulk) and end to end from
subnet configs (featurizing included). Without a profile, predictors fitted on synthetic
latencies of the ofa-mbv3 space are timed instead.

    python bench/bench_predictors.py [--root runs/_profiles/ofa-mbv3-224px-cpu] [--device cpu]
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: set before numpy loads its BLAS

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py` from anywhere
from bench._common import emit, log  # noqa: E402


def _rate(fn: Any, rows: int, repeats: int = 3) -> tuple[float, float]:
    """(rows per CPU second, rows per wall second), best of `repeats`.

    CPU time of this single-threaded process is the "one core" figure even when other
    processes share the cores; wall time is given beside it.
    """
    best_cpu = best_wall = np.inf
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        best_wall = min(best_wall, time.perf_counter() - start)
    return rows / max(best_cpu, 1e-9), rows / best_wall


def quality_figures(root: Path, device: str) -> None:
    from nas.artifacts import read_json
    from nas.profile.store import ProfileStore

    store = ProfileStore(root, device)
    report = read_json(store.predictor_dir / "report.json")
    space = report["space"]["name"]
    for kind, entry in report["predictors"].items():
        q = entry.get("holdout")
        if not q:
            log(f"{kind}: {entry.get('skipped')}")
            continue
        for metric, unit in (("within10", "share"), ("within5", "share"), ("mape", "%"),
                             ("kendall_tau", "tau")):
            emit(f"predictor.{space}.{device}.{kind}.{metric}", q[metric], unit, n=q["n"],
                 chosen=kind == report["chosen"])
    noise = report.get("noise_floor") or {}
    if noise.get("n_pairs"):
        emit(f"noise_floor.{space}.{device}.within10", noise["within10"], "share",
             n=noise["n_pairs"], mape=noise["mape"], median_rel_iqr=noise["median_rel_iqr"])
    session = report.get("session") or {}
    if "seconds" in session:
        emit(f"profiling_time.{space}.{device}", session["seconds"] / 60, "min",
             subnets=report["n_subnets"], blocks=report["n_blocks"],
             clock=(report.get("setup") or {}).get("clock"))


def throughput(root: Path | None, device: str, rows: int) -> None:
    import predictors
    from nas.profile.fit import build_predictors  # noqa: F401 - registers spaces via imports
    from predictors.base import create_predictor
    from predictors.features import Featurizer, key_universe
    from search_spaces import create_space

    models: list[Any] = []
    if root is not None:
        for kind in predictors.PREDICTORS.names():
            try:
                models.append(predictors.load_predictor(root, device, kind=kind)[0])
            except Exception as exc:  # noqa: BLE001 - a kind may be missing; say which
                log(f"{kind}: not loaded ({exc})")
        space = models[0].featurizer.space
    else:
        space = create_space("ofa-mbv3", num_classes=1000, image_size=224)
        featurizer = Featurizer(space, key_universe(space, space.resolutions))
        rng = np.random.default_rng(0)
        archs = [space.sample(rng) for _ in range(400)]
        feats = featurizer.transform(archs)
        table = rng.uniform(0.1, 3.0, len(featurizer.keys))
        y = feats.counts @ table + 1.0
        for kind in predictors.PREDICTORS.names():
            if predictors.PREDICTORS.get(kind).needs_prior:
                continue  # transfer needs a source device (bench/bench_imported.py times it)
            p = create_predictor(kind)
            p.fit(feats, y, block_ms=table)
            models.append(predictors.LatencyModel(p, featurizer, {}))
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(20_000)]
    base = models[0].features(archs[:2000])
    big = base.take(np.resize(np.arange(2000), rows))
    for model in models:
        cpu, wall = _rate(lambda m=model: m.predict_features(big), rows)
        emit(f"predict_rate.features.{model.kind}", cpu, "subnets/s", target=100_000,
             rows=rows, wall_rate=round(wall))
        cpu, wall = _rate(lambda m=model: m.predict(archs), len(archs), repeats=2)
        emit(f"predict_rate.archs.{model.kind}", cpu, "subnets/s", target=100_000,
             rows=len(archs), wall_rate=round(wall), featurizer=type(model.featurizer).__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="run folder or standalone profile folder (default: synthetic)")
    parser.add_argument("--device", default="cpu", help="device name used when profiling")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the rate test")
    args = parser.parse_args()
    if args.root is not None:
        quality_figures(args.root, args.device)
    throughput(args.root, args.device, args.rows)


if __name__ == "__main__":
    main()
