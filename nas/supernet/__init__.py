"""The trained-supernet layer: the `Supernet` base class, its weights file, BN recalibration and
subnet evaluation, and `TrainedSupernet` (a run's trained supernet, loaded once).

It sits below training, search and export, and imports none of them: search and export score
and extract subnets through this package, never through `nas.train`.

Spaces subclass `nas.supernet.base.Supernet` directly (importing the base module only), since
this package's loaders reach back into the space registry to rebuild a run's space.
"""

from __future__ import annotations

from nas.supernet.base import Supernet
from nas.supernet.bn import batch_norms, recalibrate_bn
from nas.supernet.evaluate import (
    activate_and_recalibrate,
    calibration_images,
    evaluate_subnet,
    resize_to,
)
from nas.supernet.trained import EvalSettings, TrainedSupernet, evaluate_run_subnet
from nas.supernet.weights import (
    load_trained_supernet,
    read_weights_metadata,
    save_weights,
    weights_path,
)

__all__ = [
    "EvalSettings",
    "Supernet",
    "TrainedSupernet",
    "activate_and_recalibrate",
    "batch_norms",
    "calibration_images",
    "evaluate_run_subnet",
    "evaluate_subnet",
    "load_trained_supernet",
    "read_weights_metadata",
    "recalibrate_bn",
    "resize_to",
    "save_weights",
    "weights_path",
]
