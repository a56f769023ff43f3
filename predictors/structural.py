"""A latency model for devices known only from whole-subnet measurements (no block timings).

`structural` is a linear model on the subnet's structural features (`predictors.structure`:
multiply-accumulates, memory traffic and kernel launches per kind of operation, active layers
only), optionally with the space's one-hot encoding beside them for what the physics misses.
The launch counts are the launch-bound term: at batch 1 on a GPU, latency follows the number of
layers more than their arithmetic. Which columns, and how strong a penalty, is chosen by an
inner cross-validation on the training subnets (`predictors.penalised`), so the choice adapts
to 30 or 3,000 measurements. Rows are weighted by 1/latency^2 (relative error).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.errors import IncompatibleArtifactError
from predictors.base import Features, LatencyPredictor, register_predictor, to_json
from predictors.penalised import choose, fit_chosen

# the column sets tried, simplest first (a tie in inner-CV error keeps the earlier one)
WITH_STRUCTURE = (("structure",), ("structure", "encoded"))
WITHOUT_STRUCTURE = (("encoded",), ("encoded", "counts"))


def columns(features: Features, names: tuple[str, ...]) -> np.ndarray:
    """The named feature blocks side by side, float64."""
    blocks = {"structure": lambda: features.structure, "encoded": lambda: features.encoded,
              "counts": lambda: features.counts}
    return np.concatenate([np.asarray(blocks[n](), dtype=np.float64) for n in names], axis=1)


def signature(features: Features) -> str | None:
    return None if features.describer is None else features.describer.signature


def column_sets(features: Features) -> tuple[tuple[str, ...], ...]:
    return WITH_STRUCTURE if features.structure.shape[1] else WITHOUT_STRUCTURE


@dataclass(frozen=True)
class Chosen:
    """What a fit chose and found (all JSON-able; saved in `model.json`).

    Attributes:
        intercept: the model's constant (ms).
        alpha: the penalty chosen by inner cross-validation.
        columns: the feature blocks used, e.g. `("structure", "encoded")`.
        signature: the structural features' signature (None when they are not used).
        inner_error: inner-CV mean squared relative error of the choice.
    """

    intercept: float = 0.0
    alpha: float = 0.0
    columns: tuple[str, ...] = ()
    signature: str | None = None
    inner_error: float = float("nan")

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Chosen:
        return cls(**{**blob, "columns": tuple(blob["columns"])})


@register_predictor("structural")
class StructuralPredictor(LatencyPredictor):
    """Ridge on structural features (+ encoding), columns and penalty chosen by inner CV.

    Args:
        seed: seeds the inner cross-validation split.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.coef = np.zeros(0)
        self.chosen = Chosen()

    @property
    def alpha(self) -> float:
        return self.chosen.alpha

    @property
    def column_names(self) -> tuple[str, ...]:
        return self.chosen.columns

    @property
    def signature(self) -> str | None:
        return self.chosen.signature

    def fit(
        self, features: Features, latency_ms: np.ndarray, *, block_ms: np.ndarray | None = None
    ) -> None:
        y = np.asarray(latency_ms, dtype=np.float64)
        sets = column_sets(features)
        ones = np.ones((len(y), 1))
        candidates = [(ones, columns(features, names)) for names in sets]
        choice = choose(candidates, y, seed=self.seed)
        fit = fit_chosen(candidates, y, choice)
        names = sets[choice.candidate]
        self.coef = fit.coef_pen
        self.chosen = Chosen(float(fit.coef_free[0]), choice.alpha, names,
                             signature(features) if "structure" in names else None, choice.error)

    def predict(self, features: Features) -> np.ndarray:
        if self.signature is not None and signature(features) != self.signature:
            raise IncompatibleArtifactError(
                f"structural predictor: fitted on structural features {self.signature}, got "
                f"{signature(features)}; refit it (`nas profile fit`)"
            )
        return columns(features, self.column_names) @ self.coef + self.chosen.intercept

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"coef": self.coef}, {"seed": self.seed, "chosen": to_json(asdict(self.chosen))}

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], params: dict[str, Any]
    ) -> StructuralPredictor:
        predictor = cls(seed=int(params["seed"]))
        predictor.coef, predictor.chosen = arrays["coef"].astype(np.float64), Chosen.from_json(
            params["chosen"])
        return predictor
