"""TrainConfig: parsing of file/flag values, validation, resume compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.config import build_config, config_to_dict
from nas.errors import ConfigError
from nas.train.config import PhaseConfig, TrainConfig, resume_mismatches


def test_values_from_files_and_flags_compare_equal(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(
        "resolutions: [16, 24]\nmethod: ps\n"
        "phases:\n  - {name: full, epochs: 2}\n"
        "  - {name: kernel, epochs: 1, unlock: [kernel_size]}\n"
    )
    from_file = build_config(TrainConfig, config_file=path)
    from_python = TrainConfig(
        resolutions=(16, 24), method="ps",
        phases=(PhaseConfig("full", 2), PhaseConfig("kernel", 1, ("kernel_size",))),
    )
    assert from_file == from_python
    assert TrainConfig(resolutions="16, 24").resolutions == (16, 24)  # the CLI's text form
    assert from_file.resolved_phases()[1].unlock == ("kernel_size",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": "bogus"}, "method: expected one of sandwich, ps"),
        ({"sampler": "x"}, "sampler"),
        ({"amp": "fp8"}, "amp"),
        ({"epochs": 0}, "epochs"),
        ({"resolutions": "a,b"}, "resolutions"),
        ({"resolutions": [4]}, "resolutions"),
        ({"phases": [{"name": "x", "epochs": 1, "unlok": []}]}, "unknown key"),
    ],
)
def test_invalid_values_are_config_errors(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)


def test_sandwich_is_one_all_elastic_phase() -> None:
    (phase,) = TrainConfig(epochs=3).resolved_phases()
    assert phase.unlock == ("*",) and phase.epochs == 3


def test_resume_mismatches_only_for_keys_that_matter() -> None:
    base = config_to_dict(TrainConfig())
    assert resume_mismatches(base, config_to_dict(TrainConfig(max_steps=5, lr=0.2))) == []
    assert resume_mismatches(base, config_to_dict(TrainConfig(space="darts"))) == ["space"]
    assert resume_mismatches(base, config_to_dict(TrainConfig(method="ps"))) == ["method"]


def test_resolutions_above_the_image_size_are_refused_where_they_are_used() -> None:
    with pytest.raises(ConfigError, match="up to --image-size 32, got 40"):
        TrainConfig(space="ofa-mbv3", image_size=32, resolutions=(40,))
    with pytest.raises(ConfigError, match="--image-size 8 or more"):
        TrainConfig(space="ofa-mbv3", image_size=7, resolutions=(24, 28, 32))
    # a space without elastic resolution ignores --resolutions: its defaults are no error
    assert TrainConfig(space="nb201", image_size=16).image_size == 16
    assert not TrainConfig(space="darts", image_size=16).elastic_resolution
