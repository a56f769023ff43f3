"""From stored measurements to saved predictors and a quality report; import and predict.

`build_predictors` reads every subnet and block record of one device, fits all predictor
kinds, chooses one on held-out subnets, saves each with its `meta.json`, and writes the quality
report (`report.json`) with the noise floor from repeated measurements. Given a source device's
predictor it fits `transfer` as well; for imported devices the report says how many more
measured subnets the +-10 % goal needs (`predictors.learning_curve`).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import arch_id
from nas.artifacts import atomic_write_json, device_dirname, now_iso
from nas.config import read_user_jsonl
from nas.errors import ArtifactError, ConfigError, InvalidArchError
from nas.profile.store import REPORT, ProfileStore
from predictors.features import Featurizer, key_universe, make_featurizer
from predictors.io import SELECTED, LatencyModel, save_model
from predictors.learning_curve import needed_report
from predictors.report import POOR_WITHIN10, noise_floor
from predictors.select import Selection, fit_and_select
from predictors.transfer import prior_from_model
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)


def _measurements_by_id(
    space: SearchSpace, records: Iterable[dict[str, Any]], source: Path
) -> dict[str, tuple[dict[str, Any], list[float]]]:
    """Records grouped by subnet: `{arch_id: (arch, latencies in measurement order)}`."""
    groups: dict[str, list[float]] = defaultdict(list)
    archs: dict[str, dict[str, Any]] = {}
    for number, record in enumerate(records, start=1):
        try:
            arch = space.normalize(record["arch"])
        except (InvalidArchError, KeyError, TypeError) as exc:
            raise InvalidArchError(f"{source} record {number}: {exc}") from None
        key = arch_id(arch)
        archs[key] = arch
        groups[key].append(float(record["latency_ms"]))
    return {key: (archs[key], values) for key, values in groups.items()}


def _fastest_by_id(
    space: SearchSpace, records: Iterable[dict[str, Any]], source: Path
) -> dict[str, tuple[dict[str, Any], float]]:
    """Records grouped by subnet: `{arch_id: (arch, latency)}`, several measurements merged.

    A subnet measured in several rounds keeps its lowest latency: timing noise on a machine
    shared with other work is one-sided (contention slows a model down, nothing speeds it up),
    and re-measuring the subnets with the largest predictor errors showed their stored values
    were the ones too high. Each round's value is already a median over many calls.
    """
    return {key: (arch, min(values))
            for key, (arch, values) in _measurements_by_id(space, records, source).items()}


def _noise(store: ProfileStore, space: SearchSpace) -> dict[str, Any]:
    """Agreement of two independent measurements of the same subnets.

    The first two measurements of each subnet measured in several rounds, else (one round) the
    repeats of a tenth of the subnets against the subnet's first measurement.
    """
    records = store.records(store.latency_path)
    measured = _measurements_by_id(space, records, store.latency_path)
    pairs = [(values[0], values[1]) for _, values in measured.values() if len(values) >= 2]
    if not pairs:
        repeats = _fastest_by_id(space, store.records(store.repeats_path), store.repeats_path)
        pairs = [(measured[k][1][0], v[1]) for k, v in repeats.items() if k in measured]
    rel_iqr = [
        (r["q3_ms"] - r["q1_ms"]) / r["latency_ms"] for r in records
        if "q1_ms" in r and r.get("latency_ms")
    ]
    return noise_floor([p[0] for p in pairs], [p[1] for p in pairs], rel_iqr).to_dict()


def training_data(
    space: SearchSpace, store: ProfileStore, resolutions: Sequence[int]
) -> tuple[list[dict[str, Any]], np.ndarray, Featurizer, np.ndarray | None]:
    """`(archs, latency, featurizer, block table)` from the device's stored records."""
    subnets = _fastest_by_id(space, store.records(store.latency_path), store.latency_path)
    if len(subnets) < 2:
        raise ArtifactError(
            f"{store.latency_path}: expected at least 2 measured subnets, got {len(subnets)}; "
            "run `nas profile` or `nas profile import` first"
        )
    archs = [arch for arch, _ in subnets.values()]
    latency = np.array([ms for _, ms in subnets.values()])
    blocks: dict[str, list[float]] = defaultdict(list)
    for record in store.records(store.blocks_path):
        blocks[str(record["block"])].append(float(record["latency_ms"]))
    used = {key for arch in archs for key in space.block_keys(arch)}
    keys = key_universe(space, resolutions, extra=used | set(blocks))
    table = np.array([np.median(blocks[k]) if k in blocks else np.nan for k in keys])
    return archs, latency, make_featurizer(space, keys), (table if blocks else None)


def _meta(
    kind: str, selection: Selection, report: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    fitted = selection.get(kind)
    holdout = fitted.holdout.to_dict() if fitted.holdout else None
    return {
        **extra,
        "holdout": holdout,
        # without held-out subnets nothing vouches for the predictor: flag it as well
        "poor": holdout is None or bool(holdout["poor"]),
        "poor_threshold_within10": POOR_WITHIN10,
        "selected": kind == selection.chosen,
        "n_subnets": report["n_subnets"],
        "n_train": selection.n_train,
        "n_holdout": selection.n_holdout,
        "noise_floor": report["noise_floor"],
        "created": now_iso(),
    }


def _options(
    space: SearchSpace, featurizer: Featurizer, store: ProfileStore,
    source: tuple[str, LatencyModel] | None,
) -> dict[str, dict[str, Any]]:
    """Constructor options per predictor kind: the source device's prior for `transfer`."""
    if source is None:
        return {}
    name, model = source
    if device_dirname(name) == device_dirname(store.device):
        raise ConfigError(f"--transfer-from: expected another device than '{store.device}', "
                          f"got '{name}'; name a device profiled or imported before")
    return {"transfer": {"prior": prior_from_model(model, space, featurizer.keys, device=name)}}


def build_predictors(
    space: SearchSpace, store: ProfileStore, *, resolutions: Sequence[int],
    force: str | None = None, kinds: Sequence[str] | None = None, seed: int = 0,
    extra_meta: dict[str, Any] | None = None, source: tuple[str, LatencyModel] | None = None,
    needed: bool = False,
) -> dict[str, Any]:
    """Fit, choose and save predictors for the device of `store`; returns the quality report.

    Args:
        space: the search space of the measured subnets.
        store: the device's profile and predictor folders.
        resolutions: input sides the predictors must cover (for the block-key columns).
        force: use this predictor kind whatever the held-out scores.
        kinds: predictor kinds to fit (default: all).
        seed: seeds the held-out split and the MLP.
        extra_meta: recorded in every `meta.json` (fingerprint, device settings ...).
        source: `(device, predictor)` of a device profiled before: `transfer` is fitted
            with it as prior and competes with the other kinds.
        needed: add the learning curve of the chosen kind and the measurements the +-10 %
            goal needs (`report["needed"]`; for imported devices, where more cost a trip).
    """
    archs, latency, featurizer, table = training_data(space, store, resolutions)
    features = featurizer.transform(archs)
    options = _options(space, featurizer, store, source)
    selection = fit_and_select(features, latency, block_ms=table, kinds=kinds, force=force,
                               seed=seed, options=options)
    report: dict[str, Any] = {
        "device": store.device, "space": space.spec(), "chosen": selection.chosen,
        "n_subnets": len(archs), "n_blocks": 0 if table is None else int(np.isfinite(table).sum()),
        "n_train": selection.n_train, "n_holdout": selection.n_holdout,
        "poor_threshold_within10": POOR_WITHIN10, "noise_floor": _noise(store, space),
        "predictors": {
            item.kind: {"holdout": item.holdout.to_dict() if item.holdout else None,
                        "skipped": item.reason}
            for item in selection.fitted
        },
        "created": now_iso(), **(extra_meta or {}),
    }
    if source is not None:
        report["transfer_from"] = source[0]
    if needed:
        report["needed"] = needed_report(
            features, latency, kind=selection.chosen, options=options.get(selection.chosen),
            block_ms=table, seed=seed,
        )
    for item in selection.fitted:
        if item.predictor is None:
            continue
        meta = _meta(item.kind, selection, report, extra_meta or {})
        save_model(LatencyModel(item.predictor, featurizer, meta),
                   store.predictor_dir / item.kind)
    chosen = selection.get(selection.chosen)
    if chosen.predicted is not None and chosen.holdout is not None:
        from nas.profile.plot import PLOT, plot_predicted_vs_measured

        plot_predicted_vs_measured(
            store.predictor_dir / PLOT, latency, chosen.predicted,
            title=f"{store.device}: {chosen.kind}, {len(latency)} subnets (cross-validated)",
            within10=chosen.holdout.within10)
        report["plot"] = PLOT
    atomic_write_json(store.predictor_dir / SELECTED, {"kind": selection.chosen})
    atomic_write_json(store.predictor_dir / REPORT, report)
    return report


def read_measurements(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Subnet and block records of a user's JSONL file (`arch` or `block`, plus `latency_ms`)."""
    subnets, blocks = [], []
    for number, record in read_user_jsonl(path, what="measurements file"):
        latency = record.get("latency_ms") if isinstance(record, dict) else None
        if (not isinstance(latency, (int, float)) or isinstance(latency, bool)
                or not math.isfinite(latency) or not latency > 0):
            raise ConfigError(
                f"{path} line {number}: expected an object with a finite positive 'latency_ms', "
                f"got {json.dumps(record)[:80]}"
            )
        if "arch" in record:
            subnets.append(record)
        elif "block" in record:
            blocks.append(record)
        else:
            raise ConfigError(f"{path} line {number}: expected an 'arch' or a 'block' key")
    return subnets, blocks


def import_measurements(
    space: SearchSpace, store: ProfileStore, path: Path, *, replace: bool = False,
    measurements: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
) -> tuple[int, int]:
    """Append the measurements of `path` (`measurements`: as `read_measurements` read them
    already) to the device's store; returns (subnets, blocks)."""
    subnets, blocks = measurements or read_measurements(path)
    normalised = []
    for number, record in enumerate(subnets, start=1):
        try:
            normalised.append(space.normalize(record["arch"]))
        except InvalidArchError as exc:
            raise InvalidArchError(f"{path} subnet record {number}: {exc}") from None
    if replace:
        store.clear()
    setup = {"device": store.device, "imported_from": path.name}
    for arch, record in zip(normalised, subnets, strict=True):
        store.append(store.latency_path, {"arch": arch, "arch_id": arch_id(arch),
                                          "latency_ms": float(record["latency_ms"]),
                                          "setup": setup})
    for record in blocks:
        store.append(store.blocks_path, {"block": str(record["block"]),
                                         "latency_ms": float(record["latency_ms"]),
                                         "setup": setup})
    return len(subnets), len(blocks)


def read_archs(space: SearchSpace, path: Path) -> list[dict[str, Any]]:
    """Subnet configs of a JSONL file: each line an arch, or an object with an `arch` key."""
    archs = []
    for number, obj in read_user_jsonl(path, what="subnets file"):
        if isinstance(obj, dict) and "arch" in obj:
            obj = obj["arch"]
        try:
            archs.append(space.normalize(obj))
        except InvalidArchError as exc:
            raise InvalidArchError(f"{path} line {number}: {exc}") from None
    return archs
