"""Checkpoints and exact resume: a stopped and resumed run ends with the same weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import toy_config
from train_toy import ToySpace

from nas.artifacts import RunDir, read_jsonl
from nas.data import BatchLoader
from nas.train.checkpoint import checkpoint_path, load_checkpoint
from nas.train.config import PhaseConfig, TrainConfig
from nas.train.once_for_all import SupernetTraining
from nas.train.samplers import make_sampler


def _trainer(cfg: TrainConfig, run: RunDir, loader: BatchLoader) -> SupernetTraining:
    space = ToySpace(num_classes=4, resolutions=list(cfg.resolutions), image_size=16)
    net = space.build_supernet()
    sampler = make_sampler(cfg.sampler, space, resolutions=cfg.resolutions, seed=cfg.seed)
    return SupernetTraining(
        net, loader, cfg, sampler,
        checkpoint_file=checkpoint_path(run),
        metrics_file=run.sub("supernet", "metrics.jsonl"),
        space_spec=space.spec(),
    )


def _train(cfg: TrainConfig, run: RunDir, loader: BatchLoader, *, resume: bool = False):
    trainer = _trainer(cfg, run, loader)
    if resume:
        trainer.restore(load_checkpoint(checkpoint_path(run)))
    result = trainer.run()
    return trainer, result


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


PS_PHASES = (
    PhaseConfig("full", 1, ()),
    PhaseConfig("kernel", 1, ("kernel_size", "resolution")),
    PhaseConfig("width", 1, ("kernel_size", "resolution", "depth", "width")),
)


@pytest.mark.parametrize(
    ("overrides", "stop_at"),
    [
        pytest.param({"method": "sandwich"}, 5, id="sandwich-mid-epoch"),
        pytest.param({"method": "sandwich", "sampler": "complexity"}, 3, id="complexity"),
        pytest.param({"method": "ps", "phases": PS_PHASES, "epochs": 3}, 7, id="ps-cross-phase"),
    ],
)
def test_resume_matches_uninterrupted_run(
    tmp_path: Path, tiny_loader: BatchLoader, overrides: dict, stop_at: int
) -> None:
    cfg = toy_config(checkpoint_every=100, **overrides)
    straight, result = _train(cfg, RunDir(tmp_path, "straight"), tiny_loader)
    assert result.completed and result.steps == straight.total_steps

    run = RunDir(tmp_path, "stopped")
    first, partial = _train(dataclasses.replace(cfg, max_steps=stop_at), run, tiny_loader)
    assert not partial.completed and partial.steps == stop_at
    resumed, final = _train(cfg, run, tiny_loader, resume=True)
    assert final.completed and final.steps == result.steps
    _assert_same_weights(straight.net, resumed.net)
    steps = [r["step"] for r in read_jsonl(run.sub("supernet", "metrics.jsonl"))]
    assert steps == sorted(set(steps))  # lines after the checkpoint were not duplicated


def test_resume_loses_only_steps_since_checkpoint(
    tmp_path: Path, tiny_loader: BatchLoader
) -> None:
    cfg = toy_config(checkpoint_every=2)
    run = RunDir(tmp_path, "r")
    _train(dataclasses.replace(cfg, max_steps=4), run, tiny_loader)
    state = load_checkpoint(checkpoint_path(run))
    assert state["position"].step == 4
    assert state["position"].batch == 4 % len(tiny_loader)
    assert isinstance(state["rng"]["torch"], torch.Tensor)
    assert state["config"]["method"] == "sandwich"


@pytest.mark.parametrize("overrides", [{"amp": "bf16"}, {"channels_last": True}], ids=str)
def test_amp_and_channels_last_train(
    tmp_path: Path, tiny_loader: BatchLoader, overrides: dict
) -> None:
    cfg = toy_config(max_steps=2, **overrides)
    trainer, result = _train(cfg, RunDir(tmp_path, "amp"), tiny_loader)
    assert result.steps == 2
    assert all(torch.isfinite(p).all() for p in trainer.net.parameters())
    assert torch.isfinite(torch.tensor(read_jsonl(trainer.metrics_file).__next__()["loss"]))


def test_fp16_needs_cuda(tmp_path: Path, tiny_loader: BatchLoader) -> None:
    from nas.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        _trainer(toy_config(amp="fp16"), RunDir(tmp_path, "fp16"), tiny_loader)
