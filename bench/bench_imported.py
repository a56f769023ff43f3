"""Latency predictors for devices known only from whole-subnet measurements, and transfer.

The figures of issue 16's goals, as JSON lines (bench/README.md):

- `imported.<space>.<device>.{within10,kendall_tau}`: the `structural` predictor fitted on
  `--train` (100) random measured subnets of one device, scored on held-out subnets, against
  a plain ridge regression on the per-slot one-hot encoding (the baseline the issue names);
  means over `--seeds` draws. `needed_more` is what the learning curve of the first draw says
  about the 80 % goal (-1: out of reach; its `limit` is where the curve levels off).
- `transfer.<space>.<source>-><target>.{within10,kendall_tau}`: `--samples` (20) measured
  subnets of the target plus the source's predictor (fitted on `--source-train` subnets of
  the source), against the structural predictor on the same 20 alone; `informative` is the
  same with the 20 chosen by `predictors.informative` (spread over the source's range, varied in
  structure) from the target's measured subnets outside the held-out set, instead of at random.
- `*.mean.*`: means over devices (or targets), with `better_on` = devices where we win.

Data: the real NAS-Bench-201 latencies of 23 devices in `../shared/data/nb201/` (relative to the
repository root; skipped with a reason when absent), and any measurement files given with
`--measurements DEVICE=FILE` (JSONL lines `{"arch": ..., "latency_ms": ...}`, e.g. a profile's
`profile/<device>/latency.jsonl`; a subnet measured several times keeps its lowest value) for
`--space` built with `--space-kwargs`.

    python bench/bench_imported.py                                  # NB201, all devices
    python bench/bench_imported.py --no-nb201 --space ofa-mbv3 \\
        --space-kwargs '{"num_classes": 1000, "resolutions": [128, 160, 192, 224]}' \\
        --measurements cpu=runs/.../profile/cpu/latency.jsonl \\
        --measurements ort=runs/.../profile/onnxruntime/latency.jsonl
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: set before numpy loads its BLAS

import csv  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/x.py` from anywhere
from bench._common import emit, log  # noqa: E402

NB201_CSV = ROOT.parent / "shared" / "data" / "nb201" / "nb201_latency_ms.csv"
ONE_HOT = "per-slot one-hot ridge"


@dataclass
class Device:
    """Measured subnets of one device: features (of one shared featurizer) and latency."""

    name: str
    features: Any
    latency_ms: np.ndarray


def load_nb201(path: Path) -> list[Device]:
    from predictors.features import make_featurizer
    from search_spaces import create_space

    space = create_space("nb201")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    names, body = rows[0][1:], rows[1:]
    features = make_featurizer(space, []).transform([space.normalize(r[0]) for r in body])
    table = np.array([[float(v) for v in r[1:]] for r in body])
    return [Device(name, features, table[:, i]) for i, name in enumerate(names)]


def load_measurements(space_name: str, kwargs: dict[str, Any], files: list[str]) -> list[Device]:
    from nas.arch import arch_id
    from predictors.features import key_universe, make_featurizer
    from search_spaces import create_space

    space = create_space(space_name, **kwargs)
    featurizer = make_featurizer(space, key_universe(space, getattr(space, "resolutions", [])))
    devices = []
    for spec in files:
        name, _, path = spec.partition("=")
        fastest: dict[str, tuple[dict[str, Any], float]] = {}
        for line in Path(path).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a profile still being written
            arch = space.normalize(record["arch"])
            key, ms = arch_id(arch), float(record["latency_ms"])
            if key not in fastest or ms < fastest[key][1]:
                fastest[key] = (arch, ms)
        archs = [arch for arch, _ in fastest.values()]
        latency = np.array([ms for _, ms in fastest.values()])
        devices.append(Device(name, featurizer.transform(archs), latency))
        log(f"{name}: {len(archs)} subnets from {path}")
    return devices


def one_hot_ridge(train: Any, y: np.ndarray, test: Any) -> np.ndarray:
    from predictors.ridge import fit_ridge

    coef, intercept, _ = fit_ridge(train.encoded.astype(np.float64), y, y**-2.0)
    return np.asarray(test.encoded.astype(np.float64) @ coef + intercept)


def structural(train: Any, y: np.ndarray, test: Any, seed: int) -> np.ndarray:
    from predictors.base import create_predictor

    predictor = create_predictor("structural", seed=seed)
    predictor.fit(train, y)
    return np.asarray(predictor.predict(test))


def split(n: int, train: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[:train], order[train : train + holdout]


def imported(space: str, devices: list[Device], args: argparse.Namespace) -> None:
    from predictors.learning_curve import learning_curve, measurements_needed
    from predictors.report import quality

    rows = []
    for device in devices:
        ours, base = [], []
        for seed in range(args.seeds):
            tr, te = split(len(device.latency_ms), args.train, args.holdout, seed)
            f, y = device.features, device.latency_ms
            ours.append(quality(structural(f.take(tr), y[tr], f.take(te), seed), y[te]))
            base.append(quality(one_hot_ridge(f.take(tr), y[tr], f.take(te)), y[te]))
        tr, _ = split(len(device.latency_ms), args.train, 0, 0)
        needed = measurements_needed(learning_curve(device.features.take(tr),
                                                    device.latency_ms[tr]))
        row = {m: (np.mean([getattr(q, m) for q in ours]), np.mean([getattr(q, m) for q in base]))
               for m in ("within10", "kendall_tau")}
        rows.append(row)
        for metric, (value, baseline) in row.items():
            emit(f"imported.{space}.{device.name}.{metric}", value, metric, baseline=ONE_HOT,
                 baseline_value=baseline, train=args.train, seeds=args.seeds,
                 needed_more=-1 if needed.more is None else needed.more,
                 limit=round(needed.limit, 3))
    _means(f"imported.{space}.mean", rows, ONE_HOT, devices=len(rows))


def _means(name: str, rows: list[dict[str, tuple[float, float]]], baseline: str,
           **extra: Any) -> None:
    for metric in ("within10", "kendall_tau"):
        ours = np.array([r[metric][0] for r in rows])
        base = np.array([r[metric][1] for r in rows])
        emit(f"{name}.{metric}", float(ours.mean()), metric, baseline=baseline,
             baseline_value=float(base.mean()), better_on=int((ours > base).sum()),
             worse_on=int((ours < base).sum()), **extra)


def transfer(space: str, source: Device, targets: list[Device], args: argparse.Namespace) -> None:
    from predictors.base import create_predictor
    from predictors.informative import select_informative
    from predictors.report import quality
    from predictors.transfer import SourcePrior, fit_transfer

    tr, _ = split(len(source.latency_ms), args.source_train, 0, 100)
    fitted = create_predictor("structural")
    fitted.fit(source.features.take(tr), source.latency_ms[tr])
    prior = SourcePrior(source.name, fitted, np.arange(source.features.counts.shape[1]))
    rows, picked = [], []
    for target in targets:
        f, y = target.features, target.latency_ms
        scores: dict[str, list[Any]] = {"transfer": [], "alone": [], "informative": []}
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(y))
            test = order[: min(args.holdout, len(y) // 3)]
            pool = order[len(test) :]
            few = pool[: args.samples]
            scores["transfer"].append(
                quality(fit_transfer(f.take(few), y[few], prior, seed=seed).predict(f.take(test)),
                        y[test]))
            scores["alone"].append(quality(structural(f.take(few), y[few], f.take(test), seed),
                                           y[test]))
            chosen = pool[select_informative(prior.predict(f.take(pool)), args.samples,
                                             structure=f.take(pool).structure)]
            scores["informative"].append(quality(
                fit_transfer(f.take(chosen), y[chosen], prior, seed=seed).predict(f.take(test)),
                y[test]))
        mean = {k: {m: float(np.mean([getattr(q, m) for q in v]))
                    for m in ("within10", "kendall_tau")} for k, v in scores.items()}
        rows.append({m: (mean["transfer"][m], mean["alone"][m]) for m in mean["alone"]})
        picked.append({m: (mean["informative"][m], mean["alone"][m]) for m in mean["alone"]})
        for metric in ("within10", "kendall_tau"):
            emit(f"transfer.{space}.{source.name}->{target.name}.{metric}",
                 mean["transfer"][metric], metric, baseline="structural on the same samples",
                 baseline_value=mean["alone"][metric], informative=round(
                     mean["informative"][metric], 4), samples=args.samples, seeds=args.seeds)
    _means(f"transfer.{space}.{source.name}.mean", rows, "structural on the same samples",
           targets=len(rows), samples=args.samples)
    _means(f"transfer.{space}.{source.name}.informative.mean", picked,
           "structural on random samples", targets=len(rows), samples=args.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-nb201", action="store_true", help="skip the NB201 devices")
    parser.add_argument("--space", default="ofa-mbv3", help="space of --measurements files")
    parser.add_argument("--space-kwargs", default="{}", help="JSON keyword arguments of it")
    parser.add_argument("--measurements", action="append", default=[],
                        help="DEVICE=FILE of measured subnets (repeatable)")
    parser.add_argument("--train", type=int, default=100, help="imported subnets per device")
    parser.add_argument("--samples", type=int, default=20, help="target subnets in transfer")
    parser.add_argument("--source-train", type=int, default=1000,
                        help="source subnets its predictor is fitted on (all if fewer)")
    parser.add_argument("--sources", default="gold_6240,1080ti_1",
                        help="NB201 source devices for transfer ('all': every device)")
    parser.add_argument("--holdout", type=int, default=3000, help="held-out subnets at most")
    parser.add_argument("--seeds", type=int, default=5, help="random draws per figure")
    args = parser.parse_args()
    if not args.no_nb201:
        if NB201_CSV.is_file():
            devices = load_nb201(NB201_CSV)
            imported("nb201", devices, args)
            names = [d.name for d in devices]
            chosen = names if args.sources == "all" else args.sources.split(",")
            for source in (d for d in devices if d.name in chosen):
                transfer("nb201", source, [d for d in devices if d is not source], args)
        else:
            log(f"skipped NB201: {NB201_CSV} is absent (../shared/data is not beside this "
                "checkout)")
    if args.measurements:
        measured = load_measurements(args.space, json.loads(args.space_kwargs),
                                     args.measurements)
        imported(args.space, measured, args)
        for source in measured if len(measured) > 1 else []:
            transfer(args.space, source, [d for d in measured if d is not source], args)


if __name__ == "__main__":
    main()
