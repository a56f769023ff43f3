"""DARTS-family search on NB201 (and the new methods on DARTS): every method finishes with a
valid cell, resumes bit-exactly, and keeps its own state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.artifacts import RunDir
from nas.data import DatasetSplits, Split
from nas.train.bilevel import BilevelConfig, BilevelTrainer, run_bilevel_search
from nas.train.registry import BILEVEL_METHODS
from search_spaces.nb201 import NB201Space

NEW = ("sd-darts", "rarts", "rome")


def tiny_splits(n: int = 48, side: int = 8) -> DatasetSplits:
    g = torch.Generator().manual_seed(0)

    def split(count: int) -> Split:
        labels = torch.randint(0, 3, (count,), generator=g)
        images = torch.randint(0, 255, (count, 3, side, side), generator=g, dtype=torch.uint8)
        images[:, 0] = (labels * 80).to(torch.uint8).view(-1, 1, 1)  # learnable signal
        return Split(images, labels)

    return DatasetSplits("toy", split(n), split(8), split(8), 3, 3, side, (0.5,) * 3,
                         (0.25,) * 3, False)


def tiny_config(method: str, space: str = "nb201", **overrides: Any) -> BilevelConfig:
    sized = ({"init_channels": 4, "space_options": ("cells_per_stage=1",)} if space == "nb201"
             else {"init_channels": 4, "layers": 3})
    values: dict[str, Any] = dict(
        method=method, space=space, epochs=2, epoch_steps=3, batch_size=4, partial_channels=2,
        eval_batch_size=8, val_batches=1, log_every=1, checkpoint_every=100, arch_lr=0.05,
        latency_table="toy" if method in ("fbnet", "proxyless") else None, **sized)
    values.update(overrides)
    return BilevelConfig(**values)


@pytest.mark.parametrize("method", BILEVEL_METHODS)
def test_each_method_finds_an_nb201_cell(method: str, tmp_path: Path) -> None:
    run = RunDir(tmp_path, "r")
    summary = run_bilevel_search(tiny_config(method, max_steps=2), run, splits=tiny_splits(),
                                 device="cpu")
    record = json.loads(run.sub("arch.json").read_text())
    space = NB201Space()
    assert record["arch"] == summary["arch"] and record["arch"].count("|") == 9
    assert space.normalize(record["arch"]) == record["subnet"]
    assert record["space"]["name"] == "nb201" and record["method"] == method
    assert summary["steps"] == 2 and not summary["completed"]
    assert not run.sub("genotype.json").exists()  # the DARTS space's own file


def test_perturbation_selection_on_nb201(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "pt")
    config = tiny_config("darts", max_steps=1, select="perturbation", pt_batches=1)
    summary = run_bilevel_search(config, run, splits=tiny_splits(), device="cpu")
    NB201Space().validate(summary["subnet"])
    assert summary["select"] == "perturbation"


def _tensors(state: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key in sorted(state, key=str):
            yield from _tensors(state[key], f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            yield from _tensors(value, f"{prefix}/{index}")


def _checkpoint(run: RunDir) -> dict[str, Any]:
    # not "rng": the searches draw nothing from torch's global generator, whose state in the
    # checkpoint is the test process's (its other searches build modules with it)
    state = torch.load(run.sub("supernet", "checkpoint.pt"), weights_only=True)
    return {key: state[key] for key in ("state_dict", "w_opt", "a_opt", "gumbel_state",
                                        "method_state")}


@pytest.mark.parametrize(("method", "space"), [
    *((m, "nb201") for m in BILEVEL_METHODS), *((m, "darts") for m in NEW)])
def test_resume_is_bit_exact(method: str, space: str, tmp_path: Path) -> None:
    """Stopped at step 2 (mid-epoch) and resumed to step 5 (past an epoch end) equals 5 steps
    straight: every tensor of the checkpoint, the method's own state included."""
    splits = tiny_splits()
    straight, resumed = RunDir(tmp_path, "straight"), RunDir(tmp_path, "resumed")
    run_bilevel_search(tiny_config(method, space), straight, splits=splits, device="cpu",
                       max_steps=5)
    run_bilevel_search(tiny_config(method, space), resumed, splits=splits, device="cpu",
                       max_steps=2)
    run_bilevel_search(tiny_config(method, space), resumed, splits=splits, device="cpu",
                       max_steps=5, resume=True)
    a, b = dict(_tensors(_checkpoint(straight))), dict(_tensors(_checkpoint(resumed)))
    assert a.keys() == b.keys() and len(a) > 10
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, different[:5]


def _trainer(method: str, tmp_path: Path, **overrides: Any) -> BilevelTrainer:
    config = tiny_config(method, **overrides)
    return BilevelTrainer(config, RunDir(tmp_path, method), tiny_splits(), torch.device("cpu"))


def _steps(trainer: BilevelTrainer, count: int) -> None:
    trainer.begin_epoch(0, start_batch=0)
    for step, batch in zip(range(count), trainer.batches(0, start_batch=0), strict=False):
        trainer.train_step(batch, step=step)


def test_sd_darts_keeps_its_last_iterates_as_teachers(tmp_path: Path) -> None:
    trainer = _trainer("sd-darts", tmp_path, sd_teachers=2)
    _steps(trainer, 3)
    teachers = trainer.rule.state_dict()["teachers"]
    assert len(teachers) == 2
    current = trainer.net.state_dict()
    # the newest teacher is the current iterate, the oldest one step behind
    assert all(torch.equal(teachers[-1][k], v) for k, v in current.items())
    assert not torch.equal(teachers[0]["alphas_cell"], current["alphas_cell"])


def test_rarts_couples_an_auxiliary_network_trained_on_the_other_half(tmp_path: Path) -> None:
    loose, tight = (_trainer("rarts", tmp_path / str(beta), rarts_coupling=beta)
                    for beta in (0.0, 50.0))
    for trainer in (loose, tight):
        _steps(trainer, 3)

    def gap(trainer: BilevelTrainer) -> float:
        aux = trainer.rule.state_dict()["aux"]
        return sum(float((p.detach() - aux[n]).square().sum())
                   for n, p in trainer.net.named_parameters() if n in aux)

    assert 0.0 < gap(tight) < gap(loose)


def test_rome_averages_the_gradients_of_its_samples(tmp_path: Path) -> None:
    one, four = (_trainer("rome", tmp_path / str(k), rome_samples=k) for k in (1, 4))
    for trainer in (one, four):
        _steps(trainer, 1)
        assert trainer.net.mode == "rome"
    # four samples draw four times the Gumbel noise of one
    assert not torch.equal(one.net.gumbel_generator.get_state(),
                           four.net.gumbel_generator.get_state())
    assert one.net.betas("cell").grad is not None and four.net.betas("cell").grad is not None


def test_nb201_offers_every_darts_family_method_after_its_single_path_ones() -> None:
    from nas.train.config import TrainConfig
    from nas.train.registry import TRAINERS
    from nas.train.supernet_run import trainer_class

    methods = TRAINERS.methods("nb201")
    assert methods[:2] == ("spos", "sandwich") and set(BILEVEL_METHODS) <= set(methods)
    assert trainer_class(TrainConfig(space="nb201")).kind == "once-for-all"
    assert trainer_class(TrainConfig(space="nb201", method="rome")).kind == "bilevel"
