"""The latency-predictor interface, its registry, and save/load without pickle.

Lifecycle: a predictor is constructed with keyword options, `fit(features, latency_ms,
block_ms=...)` learns from measured subnets, `predict(features)` is vectorised over rows, and
`save(directory)` / `load(directory)` round-trip it exactly: arrays go to
`model.safetensors`, scalars and options to `model.json`. The surrounding `meta.json` (space,
encoding version, device fingerprint, held-out quality) is written by `predictors.io`.

Predictors see `Features`, never archs: turning archs into features is the `Featurizer`'s job
(`predictors.features`), done once per batch, so that prediction is a few matrix products.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from nas.artifact_kinds import PREDICTOR_ARRAYS, PREDICTOR_PARAMS
from nas.artifacts import atomic_save_with, atomic_write_json, read_json
from nas.errors import ArtifactError, NasError
from nas.readers import damaged, load_tensors
from nas.registry import Registry

if TYPE_CHECKING:
    from predictors.structure.base import StructureDescriber

P = TypeVar("P", bound="LatencyPredictor")

MODEL_ARRAYS = "model.safetensors"
MODEL_PARAMS = "model.json"


class NotApplicableError(NasError):
    """A predictor cannot be fitted on this data (e.g. a lookup table without block timings)."""


@dataclass(frozen=True)
class Features:
    """Row-aligned features of a batch of subnets.

    Attributes:
        encoded: `(n, dim)` float32, `space.encode(arch)` per row.
        counts: `(n, K)` float32, how often each block key of the featurizer's key list is
            executed by the subnet (K may be 0 for spaces without `block_keys`).
        describer: computes `structure` from the two arrays above (None: no structural
            features for this space).
    """

    encoded: np.ndarray
    counts: np.ndarray
    describer: StructureDescriber | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.encoded.ndim != 2 or self.counts.ndim != 2:
            raise ValueError("Features: expected 2-d `encoded` and `counts`")
        if self.encoded.shape[0] != self.counts.shape[0]:
            raise ValueError(
                f"Features: row counts differ ({self.encoded.shape[0]} vs {self.counts.shape[0]})"
            )

    def __len__(self) -> int:
        return int(self.encoded.shape[0])

    def take(self, index: np.ndarray) -> Features:
        """The rows `index` (an integer or boolean array)."""
        return Features(self.encoded[index], self.counts[index], self.describer)

    @cached_property
    def structure(self) -> np.ndarray:
        """`(n, S)` float64 structural columns (`predictors.structure`), `(n, 0)` without.

        Computed on first use only: the predictors that do not read it pay nothing for it.
        """
        if self.describer is None:
            return np.zeros((len(self), 0))
        return self.describer(self.encoded, self.counts)

    def matrix(self) -> np.ndarray:
        """`[encoded | counts]` as one float64 design matrix."""
        return np.concatenate([self.encoded, self.counts], axis=1).astype(np.float64)


class LatencyPredictor(abc.ABC):
    """Base class of latency predictors (milliseconds in, milliseconds out).

    Subclasses implement `fit`, `predict`, `state` and `from_state`; `needs_blocks` says whether
    `fit` requires per-block timings (`block_ms`, aligned with `Features.counts` columns), and
    `needs_prior` whether it requires a source device's predictor (`predictors.transfer`).
    """

    kind: ClassVar[str]
    needs_blocks: ClassVar[bool] = False
    # fitted only from another device's predictor (passed as the `prior` option): such kinds are
    # left out of the default candidates of `fit_and_select`
    needs_prior: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        """Learn from measured subnets; raises `NotApplicableError` if the data cannot serve."""

    @abc.abstractmethod
    def predict(self, features: Features) -> np.ndarray:
        """Predicted latency in ms, one float64 per row."""

    @abc.abstractmethod
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """`(arrays, params)`: everything `from_state` needs; params must be JSON-able."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls: type[P], arrays: dict[str, np.ndarray], params: dict[str, Any]) -> P: ...

    def save(self, directory: Path) -> None:
        """Write `model.safetensors` and `model.json` into `directory` (atomically each)."""
        from safetensors.numpy import save_file

        arrays, params = self.state()
        directory.mkdir(parents=True, exist_ok=True)
        contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        atomic_save_with(directory / MODEL_ARRAYS, lambda tmp: save_file(contiguous, tmp))
        atomic_write_json(directory / MODEL_PARAMS, {"kind": self.kind, "params": params})

    @classmethod
    def load(cls: type[P], directory: Path) -> P:
        """Read a predictor written by `save`; the stored kind must be this class's."""
        blob = read_json(directory / MODEL_PARAMS, PREDICTOR_PARAMS)
        if blob["kind"] != cls.kind:
            raise ArtifactError(
                f"{directory / MODEL_PARAMS}: expected a '{cls.kind}' predictor, got "
                f"'{blob['kind']}'; {PREDICTOR_PARAMS.remedy}"
            )
        path = directory / MODEL_ARRAYS
        if not path.is_file():
            raise ArtifactError(f"{path} does not exist; re-run `nas profile` to rebuild it")
        arrays = load_tensors(path, PREDICTOR_ARRAYS, framework="numpy")
        try:
            return cls.from_state(arrays, dict(blob.get("params", {})))
        except KeyError as exc:  # written by a version that stored other fields
            raise ArtifactError(
                f"{directory}: expected the field {exc} in the saved '{cls.kind}' predictor, "
                "got none; refit it (`nas profile fit --device DEVICE ...`)"
            ) from None
        except (TypeError, ValueError, IndexError) as exc:
            # arrays or params of another shape than this kind stores
            raise damaged(directory / MODEL_PARAMS, f"does not fit its arrays "
                          f"({type(exc).__name__}: {str(exc)[:80]})", PREDICTOR_PARAMS) from None


PREDICTORS: Registry[type[LatencyPredictor]] = Registry("latency predictor")


def register_predictor(name: str) -> Any:
    """Class decorator: register a `LatencyPredictor` subclass under `name` (its `kind`)."""

    def decorator(cls: type[P]) -> type[P]:
        cls.kind = name
        PREDICTORS.register(name)(cls)
        return cls

    return decorator


def create_predictor(kind: str, **kwargs: Any) -> LatencyPredictor:
    """A fresh predictor of `kind` with its default options (plus `kwargs`)."""
    return PREDICTORS.get(kind)(**kwargs)


def load_kind(directory: Path) -> LatencyPredictor:
    """Load whatever predictor kind `directory` holds (read from its `model.json`)."""
    blob = read_json(directory / MODEL_PARAMS, PREDICTOR_PARAMS)
    return PREDICTORS.get(blob["kind"]).load(directory)


def weighted_lstsq(columns: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Least squares with per-row weights (minimises sum w * residual^2)."""
    root = np.sqrt(weight)[:, None]
    solution, *_ = np.linalg.lstsq(columns * root, target * root[:, 0], rcond=None)
    return np.asarray(solution, dtype=np.float64)


def to_json(obj: Any) -> Any:
    """Round-trip through JSON so params saved and params loaded compare equal."""
    return json.loads(json.dumps(obj))
