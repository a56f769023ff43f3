"""Transfer: a new device fitted from a few measurements, with a profiled device as prior.

Latency on two devices is strongly related (the same subnets are big or small everywhere) but
not proportional: a GPU at batch 1 pays per layer, a phone per multiply-accumulate, and each
kind of operation has its own speed. So the new device's latency is modelled as

    latency = a * source_prediction + b + sum_j gamma_j * structure_j

with `a`, `b` free and the correction `gamma` on the structural features (`predictors.structure`)
penalised, its strength (and whether to use it at all) chosen by inner cross-validation. With
20 measurements the correction stays small unless the data insist; with more it takes over what
the source gets wrong. The structural model without the source competes in the same inner
cross-validation, so a source that misleads (a CPU for a launch-bound GPU) is dropped. The
source's saved predictor is stored inside the transfer predictor, so it predicts on its own
after loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import IncompatibleArtifactError
from predictors.base import (
    PREDICTORS,
    Features,
    LatencyPredictor,
    NotApplicableError,
    register_predictor,
)
from predictors.io import LatencyModel
from predictors.penalised import choose, fit_chosen
from predictors.structural import columns as feature_columns
from predictors.structure.base import StructureDescriber
from search_spaces.base import SearchSpace


class _Fixed(StructureDescriber):
    """Hands the target's structural columns to the source predictor unchanged."""

    def __init__(self, features: Features) -> None:
        describer = features.describer
        self.names = describer.names if describer else ()
        self.version = describer.version if describer else ""
        self._structure = features.structure

    def __call__(self, encoded: np.ndarray, counts: np.ndarray) -> np.ndarray:
        return self._structure


@dataclass(frozen=True)
class SourcePrior:
    """A profiled device's fitted predictor, reading the target's features.

    Attributes:
        device: the source device's name (recorded in the transfer predictor).
        predictor: the source's fitted predictor.
        columns: for each block-count column of the source's features, the target feature
            column holding the same block key (-1: the target has no such key).
    """

    device: str
    predictor: LatencyPredictor
    columns: np.ndarray

    def predict(self, features: Features) -> np.ndarray:
        """The source's latency prediction (ms) for the target's feature rows."""
        counts = np.zeros((len(features), len(self.columns)), dtype=features.counts.dtype)
        known = self.columns >= 0
        counts[:, known] = features.counts[:, self.columns[known]]
        # structural columns are per key, so the target's own equal the source's on these rows
        source = Features(features.encoded, counts, _Fixed(features))
        return np.asarray(np.maximum(self.predictor.predict(source), 1e-9))


def prior_from_model(
    model: LatencyModel, target_space: SearchSpace, target_keys: tuple[str, ...] | list[str],
    *, device: str,
) -> SourcePrior:
    """A `SourcePrior` from a loaded source predictor, for a target with block keys `target_keys`.

    Raises:
        IncompatibleArtifactError: the source was profiled for another space or other space
            options (resolutions, width ...): its encoding would not mean the same.
    """
    source_spec, target_spec = model.featurizer.space.spec(), target_space.spec()
    if source_spec != target_spec:
        raise IncompatibleArtifactError(
            f"transfer from '{device}': its predictor was fitted for space {source_spec}, "
            f"expected {target_spec}; profile or import the source with the same space options"
        )
    index = {key: column for column, key in enumerate(target_keys)}
    mapped = np.array([index.get(key, -1) for key in model.featurizer.keys], dtype=np.int64)
    return SourcePrior(device, model.predictor, mapped)


def _candidates(
    features: Features, prediction: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Column sets tried, simplest first: the source scaled and offset; the same with a
    structural correction; the structural model alone (a source that misleads is dropped)."""
    ones = np.ones((len(prediction), 1))
    free = np.concatenate([ones, prediction[:, None]], axis=1)
    names = ("structure",) if features.structure.shape[1] else ("encoded",)
    correction = feature_columns(features, names)
    return [(free, np.zeros((len(prediction), 0))), (free, correction), (ones, correction)]


@register_predictor("transfer")
class TransferPredictor(LatencyPredictor):
    """`a * source(x) + b + penalised structural correction`, fitted on few target subnets.

    Args:
        prior: the source device (`prior_from_model`); required to fit, stored when saved.
        seed: seeds the inner cross-validation.
    """

    needs_prior = True

    def __init__(self, *, prior: SourcePrior | None = None, seed: int = 0) -> None:
        self.prior = prior
        self.seed = seed
        self.coef_free = np.zeros(2)
        self.coef = np.zeros(0)
        self.alpha = 0.0
        self.candidate = 0  # which of `_candidates` was chosen

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        if self.prior is None:
            raise NotApplicableError(
                "transfer needs a profiled source device (`--transfer-from DEVICE`)"
            )
        y = np.asarray(latency_ms, dtype=np.float64)
        candidates = _candidates(features, self.prior.predict(features))
        choice = choose(candidates, y, seed=self.seed)
        fit = fit_chosen(candidates, y, choice)
        self.coef_free, self.coef, self.alpha = fit.coef_free, fit.coef_pen, choice.alpha
        self.candidate = choice.candidate

    def predict(self, features: Features) -> np.ndarray:
        if self.prior is None:
            raise NotApplicableError("transfer predictor used before it was fitted")
        candidates = _candidates(features, self.prior.predict(features))
        free, penalised = candidates[self.candidate]
        return np.asarray(free @ self.coef_free + penalised @ self.coef, dtype=np.float64)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.prior is None:
            raise NotApplicableError("transfer predictor saved before it was fitted")
        source_arrays, source_params = self.prior.predictor.state()
        arrays = {"coef_free": self.coef_free, "coef": self.coef,
                  "source_columns": self.prior.columns,
                  **{f"source.{k}": v for k, v in source_arrays.items()}}
        params = {"seed": self.seed, "alpha": self.alpha, "candidate": self.candidate,
                  "source": {"device": self.prior.device, "kind": self.prior.predictor.kind,
                             "params": source_params}}
        return arrays, params

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], params: dict[str, Any]
    ) -> TransferPredictor:
        source = params["source"]
        inner = {k[len("source."):]: v for k, v in arrays.items() if k.startswith("source.")}
        predictor = PREDICTORS.get(source["kind"]).from_state(inner, source["params"])
        prior = SourcePrior(str(source["device"]), predictor,
                            np.asarray(arrays["source_columns"], dtype=np.int64))
        transfer = cls(prior=prior, seed=int(params["seed"]))
        transfer.coef_free = np.asarray(arrays["coef_free"], dtype=np.float64)
        transfer.coef = np.asarray(arrays["coef"], dtype=np.float64)
        transfer.alpha = float(params["alpha"])
        transfer.candidate = int(params["candidate"])
        return transfer


def fit_transfer(
    features: Features, latency_ms: np.ndarray, prior: SourcePrior, *, seed: int = 0
) -> TransferPredictor:
    """Fit a `TransferPredictor` on a new device's few measured subnets."""
    predictor = TransferPredictor(prior=prior, seed=seed)
    predictor.fit(features, latency_ms)
    return predictor
