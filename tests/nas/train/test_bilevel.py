"""DARTS-family bilevel search: every method steps, alphas move, genotypes are valid, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas.artifacts import RunDir, read_jsonl
from nas.data import DatasetSplits, Split
from nas.train.bilevel import BilevelConfig, build_search_network, run_bilevel_search
from nas.train.darts_latency import expected_latency, toy_latency_table
from nas.train.registry import BILEVEL_METHODS as METHODS
from nas.train.search_latency import latency_loss
from search_spaces.darts.space import DartsSpace


def tiny_splits(n: int = 32) -> DatasetSplits:
    g = torch.Generator().manual_seed(0)

    def split(count: int) -> Split:
        labels = torch.randint(0, 3, (count,), generator=g)
        images = torch.randint(0, 255, (count, 3, 8, 8), generator=g, dtype=torch.uint8)
        images[:, 0] = (labels * 80).to(torch.uint8).view(-1, 1, 1)  # learnable signal
        return Split(images, labels)

    return DatasetSplits("toy", split(n), split(8), split(8), 3, 3, 8, (0.5,) * 3, (0.25,) * 3,
                         False)


def tiny_config(**overrides: object) -> BilevelConfig:
    base: dict[str, object] = dict(epochs=1, batch_size=4, init_channels=4, layers=3,
                                   partial_channels=2, eval_batch_size=8, val_batches=1,
                                   log_every=1, checkpoint_every=100, arch_lr=0.05)
    base.update(overrides)
    return BilevelConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_steps_changes_alphas_and_writes_a_genotype(method: str,
                                                               tmp_path: Path) -> None:
    config = tiny_config(method=method, max_steps=1)
    run = RunDir(tmp_path, "r")
    space = DartsSpace(init_channels=4, layers=3, num_classes=3, image_size=8)
    before = build_search_network(config, space).alphas_normal.detach().clone()
    summary = run_bilevel_search(config, run, splits=tiny_splits(), device="cpu")
    state = torch.load(run.sub("supernet", "checkpoint.pt"), weights_only=True)
    after = state["state_dict"]["alphas_normal"]
    assert not torch.allclose(before, after)
    assert summary["steps"] == 1
    genotype = json.loads(run.sub("genotype.json").read_text())
    space.validate(genotype)
    assert genotype == summary["genotype"]
    assert run.sub("genotype.png").stat().st_size > 1000
    records = list(read_jsonl(run.sub("supernet", "metrics.jsonl")))
    assert records and records[0]["step"] == 1


def test_second_order_restores_weights_and_differs_from_first_order(tmp_path: Path) -> None:
    from nas.train.darts_steps import arch_step_first_order, arch_step_second_order

    space = DartsSpace(init_channels=4, layers=3, num_classes=3, image_size=8)
    grads = []
    for order in (1, 2):
        net = build_search_network(tiny_config(), space)
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
        a_opt = torch.optim.SGD(net.arch_parameters(), lr=0.0)
        weights = [w.detach().clone() for w in net.weight_parameters()]
        g = torch.Generator().manual_seed(0)
        batch = (torch.randn(4, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 0]))
        if order == 1:
            arch_step_first_order(net, a_opt, *batch, torch.nn.functional.cross_entropy)
        else:
            arch_step_second_order(net, a_opt, w_opt, batch, batch,
                                   torch.nn.functional.cross_entropy, lr=0.1)
        assert all(torch.equal(a, b) for a, b in zip(weights, net.weight_parameters(),
                                                     strict=True))
        grads.append(net.alphas_normal.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_latency_loss_lowers_expected_latency() -> None:
    space = DartsSpace(init_channels=4, layers=3, image_size=8)
    latency = expected_latency(space, toy_latency_table(space))
    alphas = {cell: torch.zeros(14, 8, requires_grad=True) for cell in ("normal", "reduce")}
    optimizer = torch.optim.Adam(list(alphas.values()), lr=0.1)
    start = float(latency(alphas).detach())
    for _ in range(20):
        expected = latency(alphas)
        for form in ("multiplicative", "additive"):
            loss = latency_loss(torch.tensor(1.0), expected, form=form, target=start * 0.5,
                                weight=1.0, exponent=0.6)
            optimizer.zero_grad()
            loss.backward(retain_graph=True)
            optimizer.step()
    assert float(latency(alphas).detach()) < 0.8 * start


def test_genotype_latency_sums_the_table_entries_of_its_edges() -> None:
    from nas.train.darts_latency import latency_key
    from search_spaces.darts.counting import cell_plans, edge_geometry

    space = DartsSpace(init_channels=4, layers=3, image_size=8)
    table = toy_latency_table(space)
    genotype = space.normalize("PC_DARTS")
    expected = 0.0
    for plan in cell_plans(4, 3, 8):
        for op, source in genotype["reduce" if plan.reduction else "normal"]:
            stride, size = edge_geometry(plan, source)
            expected += table[latency_key(op, plan.channels, size, stride)]
    net = space.build_supernet()
    got = expected_latency(space, table).of_weights(net.arch_weights(genotype))
    assert got == pytest.approx(expected, rel=1e-6)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    splits = tiny_splits()
    straight = RunDir(tmp_path, "straight")
    run_bilevel_search(tiny_config(epochs=2, max_steps=5, method="gdas"), straight,
                       splits=splits, device="cpu")
    resumed = RunDir(tmp_path, "resumed")
    run_bilevel_search(tiny_config(epochs=2, max_steps=2, method="gdas"), resumed,
                       splits=splits, device="cpu")
    run_bilevel_search(tiny_config(epochs=2, max_steps=5, method="gdas"), resumed,
                       splits=splits, device="cpu", resume=True)
    a = torch.load(straight.sub("supernet", "checkpoint.pt"), weights_only=True)
    b = torch.load(resumed.sub("supernet", "checkpoint.pt"), weights_only=True)
    assert a["step"] == b["step"] == 5
    for key in ("alphas_normal", "alphas_reduce", "stem.0.weight"):
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key])
    steps = [r["step"] for r in read_jsonl(resumed.sub("supernet", "metrics.jsonl"))
             if "loss" in r]
    assert steps == sorted(set(steps))


def test_resume_refuses_changed_options(tmp_path: Path) -> None:
    from nas.errors import ConfigError

    run = RunDir(tmp_path, "r")
    run_bilevel_search(tiny_config(max_steps=1), run, splits=tiny_splits(), device="cpu")
    with pytest.raises(ConfigError, match="layers"):
        run_bilevel_search(tiny_config(max_steps=2, layers=4), run, splits=tiny_splits(),
                           device="cpu", resume=True)


@pytest.mark.slow
def test_perturbation_selection_gives_a_valid_genotype(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "pt")
    summary = run_bilevel_search(tiny_config(max_steps=1, select="perturbation", pt_batches=1),
                                 run, splits=tiny_splits(), device="cpu")
    DartsSpace().validate(summary["genotype"])
    assert summary["select"] == "perturbation"


def test_train_supernet_options_map_onto_the_bilevel_config() -> None:
    from nas.train.config import TrainConfig
    from nas.train.darts_adapter import bilevel_config_from

    cfg = TrainConfig(space="darts", epochs=3, batch_size=16, seed=5, width_mult=0.5)
    config = bilevel_config_from(cfg)
    assert (config.method, config.epochs, config.batch_size, config.seed) == ("darts", 3, 16, 5)
    assert config.lr == BilevelConfig().lr  # OFA's default lr is not DARTS'
    assert config.init_channels == 8
    assert bilevel_config_from(TrainConfig(space="darts", lr=0.05)).lr == 0.05
