"""`nas train-supernet --few-shot K` on the tiny NB201 space: the split is recorded, the
weights reload as sub-supernets, a stopped run resumes bit-exact across the split, and
`nas rank` and `nas search` score every subnet with its own sub-supernet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir
from nas.search.objectives import SupernetAccuracy
from nas.supernet import TrainedSupernet, evaluate_subnet
from nas.supernet.few_shot import FewShotSupernet
from nas.train.checkpoint import checkpoint_path, load_checkpoint
from tests.fixtures.tiny_nb201 import register, write_truth

pytestmark = pytest.mark.slow  # four tiny trainings (~10 s on one free core)
runner = CliRunner()
NAME = register()
STEPS_PER_EPOCH = 6  # 409 synthetic training images in batches of 64


def _train(runs: Path, run: str, *extra: str) -> None:
    config = runs / "quick.yaml"
    config.write_text("bn_calibration_batches: 1\neval_batch_size: 64\ncheckpoint_every: 100\n")
    result = runner.invoke(app, [
        "train-supernet", "--space", NAME, "--dataset", "synthetic", "--image-size", "16",
        "--resolutions", "16", "--batch-size", "64", "--epochs", "2", "--method", "spos",
        "--few-shot", "2", "--few-shot-warmup", "1", "--few-shot-batches", "1",
        "--config", str(config), "--run", run, "--quiet", "--runs-dir", str(runs), *extra,
    ])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder with run 'straight', trained in one go."""
    folder = tmp_path_factory.mktemp("few-shot")
    _train(folder, "straight")
    return folder


def test_a_few_shot_run_records_its_split(runs: Path) -> None:
    run = RunDir(runs, "straight")
    record = json.loads((run.supernet_dir / "few_shot.json").read_text())
    assert record["step"] == STEPS_PER_EPOCH  # at the start of the second epoch
    assert record["choice"] == max(record["scores"], key=record["scores"].__getitem__)
    assert len(record["split"]["groups"]) == 2
    trained = TrainedSupernet.load(run)
    assert isinstance(trained.net, FewShotSupernet)
    assert trained.net.split.to_dict() == record["split"]
    # the sub-supernets trained apart after the split
    first, second = (dict(sub.named_parameters()) for sub in trained.net.subnets)
    assert any(not torch.equal(first[name], second[name]) for name in first)
    state = load_checkpoint(checkpoint_path(run))
    assert json.loads(state["few_shot"])["split"] == record["split"]


@pytest.mark.parametrize("stop", [STEPS_PER_EPOCH - 1, STEPS_PER_EPOCH + 2],
                         ids=["before-split", "after-split"])
def test_resume_is_bit_exact_across_the_split(runs: Path, stop: int) -> None:
    run = f"stopped-{stop}"
    _train(runs, run, "--max-steps", str(stop))
    assert (RunDir(runs, run).supernet_dir / "few_shot.json").is_file() == (stop > 6)
    _train(runs, run, "--resume", "--max-steps", "100")  # (a resume keeps the saved limit)
    straight = load_file(str(runs / "straight" / "supernet" / "weights.safetensors"))
    resumed = load_file(str(runs / run / "supernet" / "weights.safetensors"))
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key


def test_rank_scores_a_few_shot_run(runs: Path, tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "truth.jsonl", 10)
    result = runner.invoke(app, ["rank", "--run", "straight", "--truth", str(truth),
                                 "--samples", "8", "--bootstrap", "20", "--runs-dir", str(runs),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 8 and "supernet" in report["scores"]
    differs = 0
    for row in report["subnets"]:
        scores = _scores_by_sub(runs, row["arch"])
        assert row["supernet"] == pytest.approx(scores["owner"])
        differs += scores[0] != scores[1]
    assert differs > 0


def test_search_scores_with_the_owning_sub_supernet(runs: Path) -> None:
    accuracy = SupernetAccuracy.load(RunDir(runs, "straight"), device="cpu", split="val",
                                     batch_size=256)
    space = accuracy.supernet.space
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(4)]
    found = accuracy.evaluate(archs)
    expected = [_scores_by_sub(runs, arch)["owner"] for arch in archs]
    assert found.tolist() == pytest.approx(expected)


def _scores_by_sub(runs: Path, arch: dict) -> dict:
    """Val top-1 of `arch` in each sub-supernet (0, 1) and in its owner ("owner")."""
    trained = TrainedSupernet.load(RunDir(runs, "straight"))
    net = trained.net
    assert isinstance(net, FewShotSupernet)
    arch = net.space.normalize(arch)
    scores: dict = {k: evaluate_subnet(
        net.sub(k), arch, trained.splits, split="val", batch_size=256,
        calibration_batches=trained.settings.calibration_batches, seed=trained.settings.seed,
    )["top1"] for k in (0, 1)}
    scores["owner"] = scores[net.split.group_of(arch)]
    return scores
