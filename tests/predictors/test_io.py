from __future__ import annotations

from nas.fingerprint import fingerprint
from predictors import predictor_warning


def test_warning_for_poor_predictor_and_other_machine() -> None:
    here = fingerprint("cpu", threads=1)
    good = {"kind": "lut", "poor": False, "holdout": {"within10": 0.97}, "fingerprint": here}
    assert predictor_warning(good) is None
    poor = {**good, "poor": True, "holdout": {"within10": 0.5}}
    assert "50% of held-out subnets" in str(predictor_warning(poor))
    elsewhere = {**good, "fingerprint": {**here, "cpu_model": "Imaginary CPU 9000"}}
    warning = str(predictor_warning(elsewhere))
    assert "another machine" in warning and "Imaginary CPU 9000" in warning
    remote = {**good, "fingerprint": None}  # imported measurements: nothing to compare
    assert predictor_warning(remote) is None
