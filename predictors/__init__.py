"""Latency predictors. Importing this package registers every built-in predictor kind.

For search: `model, meta = load_predictor(run_dir, "cpu")`, then `model.predict(archs)`
(milliseconds, vectorised) and `predictor_warning(meta)` (text to show, or None).
"""

from __future__ import annotations

from predictors import lut, mlp, residual, ridge, structural, transfer  # noqa: F401 - registers
from predictors.base import (
    PREDICTORS,
    Features,
    LatencyPredictor,
    NotApplicableError,
    create_predictor,
    register_predictor,
)
from predictors.features import Featurizer
from predictors.io import LatencyModel, load_model, load_predictor, predictor_warning, save_model
from predictors.report import POOR_WITHIN10, QualityMetrics, kendall_tau, quality

__all__ = [
    "POOR_WITHIN10",
    "PREDICTORS",
    "Features",
    "Featurizer",
    "LatencyModel",
    "LatencyPredictor",
    "NotApplicableError",
    "QualityMetrics",
    "create_predictor",
    "kendall_tau",
    "load_model",
    "load_predictor",
    "predictor_warning",
    "quality",
    "register_predictor",
    "save_model",
]
