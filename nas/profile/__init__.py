"""Latency profiling: devices, measurement sessions, stored records, fitted predictors.

`nas.profile.pipeline` is what `nas profile` runs (`profile_device`, `import_profile`,
`refit_predictors`, `predict_latency`, `make_bundle`); the modules below it are the parts:
`devices` (where models are timed), `measure` (how), `session` (what, in rounds), `store`
(records on disk), `fit` (records to predictors) and `bundle` (remote devices). Importing this
package does not import torch.
"""

from __future__ import annotations

from nas.profile.devices import DEVICES, Device, create_device
from nas.profile.fit import build_predictors, import_measurements
from nas.profile.pipeline import (
    Prediction,
    Predictors,
    ProfileOptions,
    ProfileTarget,
    import_profile,
    make_bundle,
    predict_latency,
    profile_device,
    refit_predictors,
)
from nas.profile.session import ProfilePlan, Session
from nas.profile.store import ProfileStore, open_target

__all__ = [
    "DEVICES",
    "Device",
    "Prediction",
    "Predictors",
    "ProfileOptions",
    "ProfilePlan",
    "ProfileStore",
    "ProfileTarget",
    "Session",
    "build_predictors",
    "create_device",
    "import_measurements",
    "import_profile",
    "make_bundle",
    "open_target",
    "predict_latency",
    "profile_device",
    "refit_predictors",
]
