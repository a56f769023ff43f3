"""Checkpoint and weight files: round trips, self-description, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_toy import ToySpace

from nas.artifacts import RunDir
from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.supernet.weights import (
    load_trained_supernet,
    read_weights_metadata,
    save_weights,
    weights_path,
)
from nas.train.checkpoint import Position, load_checkpoint, save_checkpoint


def test_position_advances_through_epochs_and_phases() -> None:
    position = Position(phase=0, epoch=0, batch=2, step=7)
    assert position.advanced(4, 2) == Position(0, 0, 3, 8)
    assert position.advanced(3, 2) == Position(0, 1, 0, 8)
    assert Position(0, 1, 2, 9).advanced(3, 2) == Position(1, 0, 0, 10)
    assert Position(1, 0, 0, 10).at_phase_start


def test_checkpoint_round_trip(tmp_path: Path, toy_space: ToySpace) -> None:
    net = toy_space.build_supernet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    optimizer.step()
    state = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "sampler": {"kind": "uniform", "counts": [1, 2]},
        "position": Position(1, 2, 3, 40),
        "config": {"method": "ps", "resolutions": [12, 16]},
        "space": toy_space.spec(),
    }
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert loaded["position"] == Position(1, 2, 3, 40)
    assert loaded["config"] == state["config"] and loaded["space"] == toy_space.spec()
    assert loaded["sampler"] == state["sampler"]
    for key, value in net.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    other = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    other.load_state_dict(loaded["optimizer"])  # loadable without pickle
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": 99}, foreign)
    with pytest.raises(IncompatibleArtifactError, match="format"):
        load_checkpoint(foreign)


def test_trained_supernet_round_trip(tmp_path: Path, toy_space: ToySpace) -> None:
    run = RunDir(tmp_path, "w")
    net = toy_space.build_supernet()
    with torch.no_grad():
        net.stem.add_(1.0)
    save_weights(run, net, space_spec=toy_space.spec(), train_config={"dataset": "synthetic"})
    meta = read_weights_metadata(weights_path(run))
    assert meta["space"] == toy_space.spec() and meta["train_config"]["dataset"] == "synthetic"
    sidecar = json.loads(run.sub("supernet", "space.json").read_text())
    assert sidecar["space"] == toy_space.spec()
    loaded = load_trained_supernet(run, "cpu")
    assert not loaded.training
    assert loaded.space.spec() == toy_space.spec()
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_trained_supernet_errors(tmp_path: Path, toy_space: ToySpace) -> None:
    run = RunDir(tmp_path, "none")
    with pytest.raises(ArtifactError, match="nas train-supernet"):
        load_trained_supernet(run)
    small = ToySpace(num_classes=2, resolutions=[16], image_size=16)
    save_weights(run, small.build_supernet(), space_spec=toy_space.spec(), train_config={})
    with pytest.raises(IncompatibleArtifactError, match="do not fit"):
        load_trained_supernet(run)
