"""PA&DA (`--sampler pada`): importance bookkeeping, the trainer's hooks and exact resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_split, toy_config
from train_toy import ToySpace

from nas.artifacts import RunDir, read_jsonl
from nas.data import BatchLoader
from nas.errors import ConfigError
from nas.train.checkpoint import checkpoint_path, load_checkpoint
from nas.train.config import TrainConfig
from nas.train.once_for_all import SupernetTraining
from nas.train.pada import DataImportance, PadaSampler, PathImportance, flat_choices, mixed
from nas.train.samplers import UniformSampler, make_sampler
from nas.train.sandwich import _logit_gradient_norms


def test_mixed_blends_importance_with_uniform() -> None:
    np.testing.assert_allclose(mixed(np.array([1.0, 3.0]), 1.0), [0.25, 0.75])
    np.testing.assert_allclose(mixed(np.array([1.0, 3.0]), 0.5), [0.375, 0.625])
    np.testing.assert_allclose(mixed(np.array([0.0, 0.0]), 1.0), [0.5, 0.5])


def test_path_importance_is_the_mean_norm_of_the_paths_a_choice_was_on() -> None:
    paths = PathImportance({"a": ("x", "y", "z"), "b": (1, 2)})
    paths.observe({"a": "x", "b": 1}, 1.0)
    paths.observe({"a": "x", "b": 2}, 3.0)
    paths.observe({"a": "y", "b": 2}, 6.0)
    paths.update(1.0)
    # a: x -> 2, y -> 6, z unseen -> the mean of the seen (4); b: 1 -> 1, 2 -> 4.5
    np.testing.assert_allclose(paths.probs["a"], np.array([2.0, 6.0, 4.0]) / 12.0)
    np.testing.assert_allclose(paths.probs["b"], np.array([1.0, 4.5]) / 5.5)
    paths.update(1.0)  # an epoch without steps keeps the importances
    np.testing.assert_allclose(paths.probs["b"], np.array([1.0, 4.5]) / 5.5)
    rng = np.random.default_rng(0)
    draws = [paths.sample(rng)["b"] for _ in range(2000)]
    assert draws.count(2) / len(draws) == pytest.approx(4.5 / 5.5, abs=0.03)


def test_data_importance_draws_epochs_by_mean_per_image_norm() -> None:
    data = DataImportance(4, seed=0)
    assert data.order(1) is None  # before any epoch ended: the loader's own shuffle
    data.observe(torch.tensor([0, 1, 1]), torch.tensor([1.0, 2.0, 4.0]))
    data.observe(torch.tensor([2]), torch.tensor([5.0]))
    data.update(1.0)
    # image 3 unseen -> the mean of 1, 3, 5
    assert data.probs is not None
    np.testing.assert_allclose(data.probs, np.array([1.0, 3.0, 5.0, 3.0]) / 12.0)
    order = data.order(1)
    assert order is not None and len(order) == 4 and torch.equal(order, data.order(1))
    counts = np.bincount(np.concatenate([data.order(e).numpy() for e in range(2, 502)]),
                         minlength=4) / 2000
    np.testing.assert_allclose(counts, data.probs, atol=0.03)


def test_data_importance_refuses_a_checkpoint_of_another_dataset() -> None:
    state = DataImportance(5, seed=0).state_dict()
    with pytest.raises(ConfigError, match="5 images, this run trains on 4"):
        DataImportance(4, seed=0).load_state_dict(state)


def test_flat_choices_of_the_toy_space_and_none_for_list_archs() -> None:
    space = ToySpace(num_classes=4, resolutions=[12, 16], image_size=16)
    choices = flat_choices(UniformSampler(space, resolutions=(12, 16), seed=0), seed=0)
    assert choices == {"depth": (1, 2), "width": (4, 8), "kernel_size": (3, 5),
                       "resolution": (12, 16)}

    class Lists(UniformSampler):
        def sample(self, rng, *, unlock=("*",)):  # type: ignore[no-untyped-def]
            return {"kernel_size": [3, 5]}

    assert flat_choices(Lists(space, resolutions=(16,), seed=0), seed=0) is None


def test_per_image_scores_are_the_logit_gradient_norms() -> None:
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0])
    F.cross_entropy(logits, labels, reduction="sum").backward()
    assert logits.grad is not None
    torch.testing.assert_close(_logit_gradient_norms(logits.detach(), labels),
                               logits.grad.norm(dim=1))


def _loader() -> BatchLoader:
    return BatchLoader(tiny_split(), batch_size=8, device="cpu", mean=(0.5,) * 3,
                       std=(0.25,) * 3, shuffle=True, seed=0, augment=True, drop_last=True)


def _training(cfg: TrainConfig, run: RunDir) -> SupernetTraining:
    space = ToySpace(num_classes=4, resolutions=list(cfg.resolutions), image_size=16)
    torch.manual_seed(0)
    sampler = make_sampler(cfg.sampler, space, resolutions=cfg.resolutions, seed=cfg.seed,
                           epochs=cfg.epochs)
    return SupernetTraining(space.build_supernet(), _loader(), cfg, sampler,
                            checkpoint_file=checkpoint_path(run),
                            metrics_file=run.sub("supernet", "metrics.jsonl"),
                            space_spec=space.spec())


def test_pada_training_updates_both_distributions_and_logs_them(tmp_path: Path) -> None:
    cfg = toy_config(method="spos", sampler="pada", epochs=3)
    training = _training(cfg, RunDir(tmp_path, "p"))
    sampler = training.trainer.sampler
    assert isinstance(sampler, PadaSampler) and sampler.paths is not None
    assert training.run().completed
    ends = [r for r in read_jsonl(training.metrics_file) if "pada_mix" in r]
    assert [r["pada_mix"] for r in ends] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert sampler.data is not None and sampler.data.probs is not None
    assert not np.allclose(sampler.data.probs, 1 / len(sampler.data.probs))
    assert any(not np.allclose(p, 1 / len(p)) for p in sampler.paths.probs.values())
    # epoch 1 on is drawn from the weights: with replacement, so some images repeat
    assert len(set(training.trainer.loader.order(1).tolist())) < len(tiny_split())


def test_pada_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    cfg = toy_config(method="spos", sampler="pada", epochs=3, checkpoint_every=100)
    straight = _training(cfg, RunDir(tmp_path, "straight"))
    assert straight.run().completed

    run = RunDir(tmp_path, "stopped")
    first = _training(dataclasses.replace(cfg, max_steps=8), run)  # mid-epoch 1 (6 per epoch)
    assert not first.run().completed
    state = load_checkpoint(checkpoint_path(run))
    assert state["sampler"]["kind"] == "pada" and state["sampler"]["data"]["probs"] is not None
    resumed = _training(cfg, run)
    resumed.restore(state)
    assert resumed.run().completed
    for key, value in straight.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    a, b = straight.trainer.sampler, resumed.trainer.sampler
    assert isinstance(a, PadaSampler) and isinstance(b, PadaSampler)
    assert a.data is not None and b.data is not None
    np.testing.assert_array_equal(a.data.probs, b.data.probs)


def test_config_accepts_pada_and_rejects_unknown_samplers() -> None:
    assert toy_config(sampler="pada").sampler == "pada"
    with pytest.raises(ConfigError, match="sampler"):
        toy_config(sampler="padda")
