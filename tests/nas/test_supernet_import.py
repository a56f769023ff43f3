"""Importing Once-for-All checkpoints: parity with OFA's own subnets, the run it makes, errors.

The expected logits are REFERENCE VALUES FROM THE PEER: OFA's `get_active_subnet(
preserve_weight=True)` in eval mode, recorded by tests/fixtures/ofa/make_ofa_fixture.py with
the `ofa` package on networks with random weights and random BN statistics. Our subnets keep
the imported statistics (no BN recalibration) and must give the same logits.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.artifacts import RunDir
from nas.errors import ArtifactError, ConfigError, IncompatibleArtifactError
from nas.supernet import Supernet
from nas.supernet.ofa_import import import_ofa_supernet, ofa_supernet
from nas.supernet.weights import load_trained_supernet, read_weights_metadata, weights_path
from tests.fixtures.ofa.fixture import MBV3, RESNET, OFAFixture, case_names, load_ofa_fixture

TOLERANCE = 1e-4  # max abs logit difference the issue asks for


@functools.cache
def imported(name: str) -> tuple[OFAFixture, Supernet]:
    fixture = load_ofa_fixture(name)
    return fixture, ofa_supernet(fixture.state)


CASES = [(name, case) for name in (MBV3, RESNET) for case in case_names(name)]


def max_difference(net: Supernet, fixture: OFAFixture, case: dict[str, Any]) -> float:
    arch = net.space.normalize({**case["config"], "r": case["r"]})
    subnet = net.extract_subnet(arch).eval()
    with torch.no_grad():
        logits = subnet(fixture.case_input(case))
    return float((logits - fixture.logits[case["name"]]).abs().max())


@pytest.mark.parametrize(("name", "case_name"), CASES)
def test_extracted_subnets_give_ofas_logits(name: str, case_name: str) -> None:
    fixture, net = imported(name)
    case = next(c for c in fixture.cases if c["name"] == case_name)
    assert max_difference(net, fixture, case) <= TOLERANCE


@pytest.mark.parametrize("name", [MBV3, RESNET])
def test_the_supernet_itself_gives_ofas_logits(name: str) -> None:
    fixture, net = imported(name)
    for case in fixture.cases[:2]:
        net.set_active(net.space.normalize({**case["config"], "r": case["r"]}))
        with torch.no_grad():
            logits = net(fixture.case_input(case))
        assert float((logits - fixture.logits[case["name"]]).abs().max()) <= TOLERANCE


# -- the run ----------------------------------------------------------------------------------
def ofa_file(tmp_path: Path, state: Any, name: str = "ofa_resnet50") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_import_writes_a_run_that_loads_like_a_trained_one(tmp_path: Path) -> None:
    fixture, _ = imported(RESNET)
    path = ofa_file(tmp_path, {"state_dict": fixture.state})
    run = RunDir(tmp_path / "runs", "imported")
    (tmp_path / "val").mkdir()
    summary = import_ofa_supernet(path, run, dataset="imagefolder", data_dir=tmp_path / "val")
    assert summary.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = run.manifest()
    stage = manifest["stages"]["import-supernet"]
    assert stage["status"] == "done" and stage["config"]["source"]["file"] == "ofa_resnet50"
    assert manifest["space"]["name"] == "ofa-resnet50"
    assert manifest["space"]["kwargs"]["resolutions"] == [128, 160, 192, 224]
    train_config = read_weights_metadata(weights_path(run))["train_config"]
    assert train_config["dataset"] == "imagefolder" and train_config["image_size"] == 224
    assert train_config["data_dir"] == str((tmp_path / "val").resolve())
    net = load_trained_supernet(run)
    assert max_difference(net, fixture, fixture.cases[2]) <= TOLERANCE


def test_a_bare_or_wrapped_state_dict_is_read_too(tmp_path: Path) -> None:
    fixture, _ = imported(RESNET)
    wrapped = {f"module.{key}": value for key, value in fixture.state.items()}
    path = ofa_file(tmp_path, wrapped)
    summary = import_ofa_supernet(path, RunDir(tmp_path / "runs", "bare"))
    assert summary.space["kwargs"]["width_scale"] == 0.25


def test_a_run_with_a_supernet_is_not_overwritten(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs", "taken")
    run.sub("supernet", "weights.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already has a supernet"):
        import_ofa_supernet(tmp_path / "absent", run)


def test_a_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such file"):
        import_ofa_supernet(tmp_path / "absent", RunDir(tmp_path / "runs", "r"))


class Pickled:
    """A Python object inside a checkpoint: `weights_only=True` must refuse it."""


def test_files_with_python_objects_are_not_unpickled(tmp_path: Path) -> None:
    path = ofa_file(tmp_path, {"state_dict": {"w": torch.ones(1)}, "cfg": Pickled()})
    with pytest.raises(ArtifactError, match="holds Python objects") as info:
        import_ofa_supernet(path, RunDir(tmp_path / "runs", "r"))
    assert "if you trust its source" in str(info.value)


def test_a_file_that_is_not_a_pytorch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(ArtifactError, match="not readable as a PyTorch file"):
        import_ofa_supernet(path, RunDir(tmp_path / "runs", "r"))


def test_a_file_without_tensors_is_refused(tmp_path: Path) -> None:
    path = ofa_file(tmp_path, {"epoch": 3, "best_acc": 0.7})
    with pytest.raises(IncompatibleArtifactError, match=r"got \['best_acc', 'epoch'\]"):
        import_ofa_supernet(path, RunDir(tmp_path / "runs", "r"))


def test_the_wrong_space_names_the_tensor_it_lacks(tmp_path: Path) -> None:
    fixture, _ = imported(RESNET)
    path = ofa_file(tmp_path, {"state_dict": fixture.state})
    with pytest.raises(IncompatibleArtifactError, match="no tensor 'first_conv.conv.weight'"):
        import_ofa_supernet(path, RunDir(tmp_path / "runs", "r"), space="ofa-mbv3")
    assert not (tmp_path / "runs" / "r" / "manifest.json").exists()
