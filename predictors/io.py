"""Saved latency predictors: `meta.json` beside each model, loading with compatibility checks.

Layout of one device's predictors (written by `nas profile`):

    <predictor dir>/                e.g. runs/NAME/predictor/cpu/
        selected.json               {"kind": <the chosen kind>}
        report.json                 the quality report of every kind
        <kind>/model.safetensors, model.json, meta.json

`meta.json` holds the space spec (name, encoding version, kwargs), the block-key columns, the
device fingerprint and settings, and the held-out quality with its `poor` flag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import Arch
from nas.artifact_kinds import PREDICTOR_META, PREDICTOR_PARAMS, PREDICTOR_SELECTED
from nas.artifacts import RunLayout, atomic_write_json, device_dirname, read_json
from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.fingerprint import mismatch_warning
from nas.readers import damaged
from predictors._threads import one_blas_thread
from predictors.base import Features, LatencyPredictor, load_kind
from predictors.features import Featurizer, make_featurizer
from predictors.report import POOR_WITHIN10
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

META = "meta.json"
SELECTED = "selected.json"
FORMAT_VERSION = 1


class LatencyModel:
    """A fitted predictor with the featurizer it was fitted with: archs in, milliseconds out.

    Attributes:
        predictor: the fitted `LatencyPredictor`.
        featurizer: maps canonical archs to its features.
        meta: the `meta.json` contents.
    """

    def __init__(self, predictor: LatencyPredictor, featurizer: Featurizer, meta: dict[str, Any]):
        self.predictor = predictor
        self.featurizer = featurizer
        self.meta = meta

    @property
    def kind(self) -> str:
        return self.predictor.kind

    def features(self, archs: Sequence[Arch]) -> Features:
        return self.featurizer.transform(archs)

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted latency (ms) of canonical archs, vectorised over the batch."""
        return self.predict_features(self.featurizer.transform(archs))

    def predict_features(self, features: Features) -> np.ndarray:
        """Predicted latency (ms) of pre-computed features (one BLAS thread)."""
        with one_blas_thread():
            return self.predictor.predict(features)


def save_model(model: LatencyModel, directory: Path) -> None:
    """Write the predictor and its `meta.json` (with space spec and block keys) to `directory`."""
    model.predictor.save(directory)
    meta = {
        **model.meta,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "space": model.featurizer.space.spec(),
        "space_name": model.featurizer.space.name,
        "encoding_version": model.featurizer.space.encoding_version,
        "dim": model.featurizer.space.dim,
        "block_keys": list(model.featurizer.keys),
    }
    atomic_write_json(directory / META, meta)


def check_compatible(meta: dict[str, Any], space: SearchSpace, source: Path) -> None:
    """Raise `IncompatibleArtifactError` if `meta` was made for another space or encoding."""
    for field, expected in (
        ("space_name", space.name),
        ("encoding_version", space.encoding_version),
        ("dim", space.dim),
    ):
        if meta.get(field) != expected:
            raise IncompatibleArtifactError(
                f"{source}: predictor was fitted for {field}={meta.get(field)!r}, "
                f"expected {expected!r}; re-run `nas profile` for this space"
            )


def load_model(directory: Path, *, space: SearchSpace | None = None) -> LatencyModel:
    """Load one predictor folder (`<kind>/` with `meta.json`).

    Args:
        directory: the folder.
        space: when given, the predictor must belong to it; else the space is rebuilt from meta.
    """
    from search_spaces import space_from_spec

    meta = read_json(directory / META, PREDICTOR_META)
    if meta.get("format_version") != FORMAT_VERSION:
        raise IncompatibleArtifactError(
            f"{directory / META}: predictor format {meta.get('format_version')!r}, expected "
            f"{FORMAT_VERSION}; re-run `nas profile`"
        )
    if space is None:
        space = space_from_spec(meta["space"], source=str(directory / META))
    check_compatible(meta, space, directory / META)
    predictor = load_kind(directory)
    model = LatencyModel(predictor, make_featurizer(space, meta.get("block_keys", [])), meta)
    _probe(model, space, directory)
    return model


def _probe(model: LatencyModel, space: SearchSpace, directory: Path) -> None:
    """Predict the smallest subnet once: arrays of the wrong size or non-finite parameters
    show here, as one line naming the folder, not as a crash in the middle of a search."""
    try:
        latency = model.predict([space.smallest()])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise damaged(directory / "model.json", f"does not fit the space's features "
                      f"({type(exc).__name__}: {str(exc)[:80]})", PREDICTOR_PARAMS) from None
    if not np.all(np.isfinite(latency)):
        raise damaged(directory / "model.json", "predicts a non-finite latency",
                      PREDICTOR_PARAMS)


def predictor_root(run_or_dir: Path, device: str) -> Path:
    """The folder holding `device`'s predictors, from a run folder or a predictor folder."""
    for candidate in (
        RunLayout(run_or_dir).predictor_dir(device),
        run_or_dir / device_dirname(device),
        run_or_dir,
    ):
        if (candidate / SELECTED).is_file() or (candidate / META).is_file():
            return candidate
    raise ArtifactError(
        f"no latency predictor for device '{device}' under {run_or_dir}; "
        f"run `nas profile --device {device}` (or `nas profile import`) first"
    )


def load_predictor(
    run_or_dir: Path | Any, device: str, *, kind: str | None = None,
    space: SearchSpace | None = None, warn: bool = True,
) -> tuple[LatencyModel, dict[str, Any]]:
    """The chosen (or `kind`) latency predictor of `device` and its meta.

    Args:
        run_or_dir: a run folder (`RunDir` or path), a `predictor/<device>/` folder or a
            single predictor folder.
        device: the device name used when profiling.
        kind: load this predictor kind instead of the selected one.
        space: the space the caller will predict for (checked for compatibility).
        warn: log a warning when the predictor is flagged as poor or was profiled on another
            machine (commands that print `predictor_warning(meta)` themselves pass False).
    """
    base = run_or_dir.path if isinstance(run_or_dir, RunLayout) else Path(run_or_dir)
    root = predictor_root(base, device)
    if (root / META).is_file():
        directory = root
    else:
        chosen = kind or read_json(root / SELECTED, PREDICTOR_SELECTED)["kind"]
        directory = root / str(chosen)
        if not (directory / META).is_file():
            raise ArtifactError(f"no '{chosen}' predictor in {root}; available: "
                                + ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())))
    model = load_model(directory, space=space)
    warning = predictor_warning(model.meta) if warn else None
    if warning:
        logger.warning(warning)
    return model, model.meta


def predictor_warning(meta: dict[str, Any]) -> str | None:
    """Why a predictor should not be trusted blindly (poor held-out quality, other machine)."""
    notes = []
    quality = meta.get("holdout") or {}
    if meta.get("poor"):
        within10 = quality.get("within10")
        share = f"{100 * within10:.0f}%" if isinstance(within10, float) else "unknown"
        notes.append(
            f"latency predictor '{meta.get('kind')}' is poor: {share} of held-out subnets within "
            f"+-10% (threshold {100 * POOR_WITHIN10:.0f}%); profile more subnets or check noise"
        )
    mismatch = mismatch_warning(meta.get("fingerprint"))
    if mismatch:
        notes.append(mismatch)
    return "; ".join(notes) if notes else None
