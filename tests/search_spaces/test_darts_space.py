"""The DARTS space: genotype parsing, validation, encoding, and exact network counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas.errors import InvalidArchError
from search_spaces.darts.genotypes import genotype_string, load_genotype_argument
from search_spaces.darts.network import count_parameters
from search_spaces.darts.space import DartsSpace

DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)


@pytest.fixture
def eval_space() -> DartsSpace:
    return DartsSpace(init_channels=36, layers=20, num_classes=10)


def test_darts_v2_has_the_published_parameter_count(eval_space: DartsSpace) -> None:
    genotype = eval_space.normalize("DARTS_V2")
    assert eval_space.complexity(genotype)["params"] == 3_349_342


def test_pc_darts_cifar_is_3_63m_parameters(eval_space: DartsSpace) -> None:
    # the PC-DARTS paper reports 3.6M (3.63M in its table) for its CIFAR cell
    params = eval_space.complexity(eval_space.normalize("PC_DARTS"))["params"]
    assert round(params / 1e6, 2) == 3.63


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2", "PC_DARTS_CIFAR", "PC_DARTS_IMAGE"])
def test_analytic_counts_match_the_torch_network(name: str) -> None:
    space = DartsSpace(init_channels=8, layers=5, num_classes=7, in_channels=1, image_size=16)
    genotype = space.normalize(name)
    net = space.build_network(genotype).eval()
    macs = 0

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            macs += output.numel() * module.weight[0].numel()
        elif isinstance(module, torch.nn.Linear):
            macs += module.weight.numel()

    for module in net.modules():
        module.register_forward_hook(hook)
    net(torch.randn(1, 1, 16, 16))
    assert space.complexity(genotype) == {"params": count_parameters(net), "macs": macs}


def test_auxiliary_head_is_not_counted() -> None:
    space = DartsSpace(init_channels=36, layers=20, auxiliary=True)
    net = space.build_network(space.normalize("DARTS_V2"))
    assert count_parameters(net) == 3_349_342
    assert count_parameters(net, exclude_auxiliary=False) > 3_349_342


def test_genotype_string_round_trip(eval_space: DartsSpace) -> None:
    from_text = eval_space.normalize(DARTS_V2_TEXT)
    assert from_text == eval_space.normalize("DARTS_V2")
    assert eval_space.normalize(genotype_string(from_text)) == from_text


def test_tuples_lists_and_json_are_accepted(eval_space: DartsSpace) -> None:
    canonical = eval_space.normalize("DARTS_V1")
    as_tuples = {k: tuple(tuple(e) if isinstance(e, list) else e for e in v)
                 for k, v in canonical.items()}
    assert eval_space.normalize(as_tuples) == canonical
    assert eval_space.normalize(json.dumps(canonical)) == canonical
    ordered = [canonical[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")]
    assert eval_space.normalize(ordered) == canonical


def test_genotype_file_argument(tmp_path, eval_space: DartsSpace) -> None:  # type: ignore[no-untyped-def]
    text_file = tmp_path / "g.txt"
    text_file.write_text(DARTS_V2_TEXT)
    json_file = tmp_path / "g.json"
    json_file.write_text(json.dumps(eval_space.normalize("PC_DARTS")))
    assert eval_space.normalize(load_genotype_argument(str(text_file))) == eval_space.normalize(
        "DARTS_V2")
    assert eval_space.normalize(load_genotype_argument(str(json_file))) == eval_space.normalize(
        "PC_DARTS")
    with pytest.raises(InvalidArchError, match="no such file"):
        load_genotype_argument(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("bad, match", [
    ("Genotype(normal=__import__('os'))", "literal"),
    ({"normal": [["sep_conv_3x3", 0]] * 8, "reduce": [["sep_conv_3x3", 5]] * 8}, r"reduce\[0\]"),
    ({"normal": [["conv_7x1_1x7", 0]] * 8, "reduce": [["sep_conv_3x3", 0]] * 8}, r"normal\[0\]"),
    ({"normal": [["sep_conv_3x3", 0]] * 6, "reduce": [["sep_conv_3x3", 0]] * 8}, "8 edges"),
])
def test_invalid_genotypes_name_the_problem(bad: object, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        DartsSpace().normalize(bad)


def test_sample_mutate_crossover_encode_stay_valid() -> None:
    space = DartsSpace()
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = space.sample(rng), space.sample(rng)
        for arch in (a, space.mutate(a, rng, prob=0.5), space.crossover(a, b, rng)):
            space.validate(arch)
            for cell in ("normal", "reduce"):
                for node in range(4):
                    assert arch[cell][2 * node][1] != arch[cell][2 * node + 1][1]
            vector = space.encode(arch)
            assert vector.shape == (space.dim,)
            assert space.decode(vector) == arch


def test_largest_has_more_params_than_smallest() -> None:
    space = DartsSpace()
    largest, smallest = space.largest(), space.smallest()
    assert space.complexity(largest)["params"] > space.complexity(smallest)["params"]


def test_suggest_with_optuna() -> None:
    import optuna

    space = DartsSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    arch = space.suggest(study.ask())
    space.validate(arch)


def test_registered_and_spec_round_trip() -> None:
    from search_spaces import create_space, space_from_spec

    space = create_space("darts", init_channels=8, layers=5)
    rebuilt = space_from_spec(space.spec())
    assert rebuilt.spec() == space.spec()
    assert space.describe()["num_subnets"] > 1e17


def test_genotype_labels_do_not_overlap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from search_spaces.darts.genotypes import named_genotype, published_names
    from search_spaces.darts.plot import _LABEL_H, _LABEL_W, label_spots, plot_genotype

    for name in published_names():
        genotype = named_genotype(name)
        assert genotype is not None
        for cell in ("normal", "reduce"):
            spots = label_spots([list(edge) for edge in genotype[cell]])
            for i, (x, y) in enumerate(spots):
                for u, v in spots[:i]:
                    assert abs(x - u) > _LABEL_W or abs(y - v) > _LABEL_H, (name, cell, i)
    plot_genotype(named_genotype("DARTS_V2"), tmp_path / "genotype.png")
    assert (tmp_path / "genotype.png").stat().st_size > 10_000
