"""Few-shot NAS bookkeeping: partitions, the gradient-matching choice, routing, inheritance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas.errors import ConfigError, IncompatibleArtifactError
from nas.supernet.few_shot import FewShotSupernet, Split, partitions, split_supernet
from nas.train.config import TrainConfig
from nas.train.few_shot import best_partition, choose_split, cosine_distances, inherit_optimizer
from search_spaces.nb201 import NB201Space
from search_spaces.nb201.cells import KEYS, OPS
from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space


def _tiny_nb201() -> NB201Space:
    return NB201Space(channels=4, cells_per_stage=1, image_size=16)


def _edge_split(space: NB201Space, key: str = "edge_2_1") -> Split:
    choice = next(c for c in space.few_shot_choices() if c.key == key)
    return Split(choice, (("none", "nor_conv_3x3"), ("skip_connect", "nor_conv_1x1",
                                                    "avg_pool_3x3")))


@pytest.mark.parametrize(("n", "k", "count"), [(5, 2, 15), (5, 3, 25), (3, 3, 1), (3, 2, 3)])
def test_partitions_are_every_set_partition_once(n: int, k: int, count: int) -> None:
    items = list("abcde"[:n])
    found = partitions(items, k)
    assert len(found) == count == len({frozenset(map(frozenset, p)) for p in found})
    for groups in found:
        assert len(groups) == k and all(groups)
        assert sorted(itertools.chain(*groups)) == items


def test_best_partition_groups_the_candidates_whose_gradients_agree() -> None:
    # a, b point one way, c, d another: the split keeps each pair together and cuts the rest
    grads = [{"w": torch.tensor(v)} for v in ([1.0, 0.1], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0])]
    distances = cosine_distances(grads)
    assert distances[0, 1] == pytest.approx(1 - 1 / np.sqrt(1.01))
    groups, cut = best_partition(distances, "abcd", 2)
    assert groups == (("a", "b"), ("c", "d"))
    assert cut == pytest.approx(distances[[0, 0, 1, 1], [2, 3, 2, 3]].sum())


def test_distances_use_only_weights_every_candidate_trains() -> None:
    # "own" has a gradient under one candidate only (its op's weights): it must not count
    grads = [{"shared": torch.tensor([1.0, 0.0]), "own": torch.tensor([5.0])},
             {"shared": torch.tensor([1.0, 0.0])}]
    assert cosine_distances(grads)[0, 1] == pytest.approx(0.0, abs=1e-9)


def test_every_nb201_cell_belongs_to_exactly_one_sub_supernet() -> None:
    split = _edge_split(_tiny_nb201())
    counts = [0, 0]
    for ops in itertools.product(OPS, repeat=len(KEYS)):
        arch = dict(zip(KEYS, ops, strict=True))
        owner = split.group_of(arch)
        counts[owner] += 1
        assert [arch["edge_2_1"] in group for group in split.groups].count(True) == 1
    assert counts == [2 * 5**5, 3 * 5**5]  # all 15,625 cells, by the size of their group


def test_ofa_subnets_route_by_an_always_running_block() -> None:
    space = OFAMobileNetV3Space.tiny()
    choices = space.few_shot_choices()
    assert len(choices) == 20 and all(c.index % 4 < 2 for c in choices)  # never depth-skipped
    split = Split(choices[1], ((3, 4), (6,)))  # expand ratio of block 0
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert split.group_of(arch) == int(arch["expand_ratio"][0] == 6)


def test_split_must_partition_the_candidates() -> None:
    choice = _tiny_nb201().few_shot_choices()[0]
    with pytest.raises(ConfigError, match="partitioning"):
        Split(choice, (("none", "skip_connect"), ("nor_conv_1x1",)))
    with pytest.raises(IncompatibleArtifactError, match="no such choice"):
        Split.from_dict({"key": "edge_9_9", "index": None, "groups": [["none"]]}, _tiny_nb201())


def test_sub_supernets_inherit_the_weights_and_score_their_own_subnets() -> None:
    space = _tiny_nb201()
    torch.manual_seed(0)
    base = space.build_supernet().eval()
    net = split_supernet(base, _edge_split(space).to_dict())
    assert isinstance(net, FewShotSupernet)
    for sub in net.subnets:
        for key, value in base.state_dict().items():
            assert torch.equal(sub.state_dict()[key], value), key
    x = torch.randn(2, 3, 16, 16)
    arch = {**space.largest(), "edge_2_1": "skip_connect"}  # group 1
    base.set_active(arch)
    net.set_active(arch)
    assert net.current == 1 and net.active() == space.normalize(arch)
    assert torch.allclose(net(x), base(x))
    with torch.no_grad():  # training sub-supernet 0 leaves the subnets of sub-supernet 1 alone
        for p in net.subnets[0].parameters():
            p.add_(1.0)
    assert torch.allclose(net(x), base(x))
    assert torch.allclose(net.extract_subnet(arch).eval()(x), base(x), atol=1e-6)
    other = {**space.largest(), "edge_2_1": "none"}  # group 0: changed weights
    base.set_active(other)
    net.set_active(other)
    assert not torch.allclose(net(x), base(x))


def test_split_inherits_momentum_and_learning_rate() -> None:
    space = _tiny_nb201()
    base = space.build_supernet()
    old = torch.optim.SGD(base.parameters(), lr=0.1, momentum=0.9)
    base(torch.randn(2, 3, 16, 16)).sum().backward()
    old.step()
    old.param_groups[0]["lr"] = 0.037
    net = FewShotSupernet(base, _edge_split(space))
    new = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    inherit_optimizer(old, new, base, net)
    assert new.param_groups[0]["lr"] == 0.037
    named = dict(base.named_parameters())
    moved = 0
    for name, param in net.named_parameters():
        source = named[name.split(".", 2)[2]]
        if source in old.state:
            moved += 1
            assert torch.equal(new.state[param]["momentum_buffer"],
                               old.state[source]["momentum_buffer"])
    assert moved == 2 * len(old.state) > 0


def test_gradient_matching_splits_a_decision_into_k_groups() -> None:
    space = _tiny_nb201()
    torch.manual_seed(0)
    net = space.build_supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batches = [(torch.randn(4, 3, 16, 16), torch.arange(4) % 10)]
    rng_before = torch.get_rng_state()
    decision = choose_split(net, batches, 3, seed=0)
    assert set(decision.scores) == set(KEYS)
    assert decision.split.choice.key == max(decision.scores, key=decision.scores.__getitem__)
    assert len(decision.split.groups) == 3
    assert np.allclose(decision.distances["edge_1_0"], np.array(decision.distances["edge_1_0"]).T)
    # measured on a copy, under a forked RNG: training's state is untouched
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)
    with pytest.raises(ConfigError, match="no decision with 6"):
        choose_split(net, batches, 6, seed=0)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"few_shot": 1}, "K >= 2"),
    ({"few_shot": 2, "method": "ps"}, "--method"),
    ({"few_shot": 2, "few_shot_warmup": 4, "epochs": 4}, "1 to 3 epochs"),
    ({"few_shot_batches": 3}, "--few-shot K too"),
])
def test_few_shot_options_are_checked(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**overrides)
    assert TrainConfig(few_shot=2, epochs=5).split_epoch == 2


@pytest.mark.slow  # an OFA MobileNetV3 forward/backward six times (~1 s on a free core)
def test_ofa_supernet_splits_on_a_block_kernel_or_expand_ratio() -> None:
    space = OFAMobileNetV3Space.tiny()
    torch.manual_seed(0)
    base = space.build_supernet()
    compared = space.few_shot_choices()[6:8]  # kernel and expand of block 4 (stage 1)
    batch = (torch.randn(2, 3, 16, 16), torch.tensor([0, 1]))
    decision = choose_split(base, [batch], 2, seed=0, choices=compared)
    assert decision.split.choice in compared and len(decision.scores) == 2
    net = FewShotSupernet(base, decision.split)
    arch = space.sample(np.random.default_rng(1))
    owner = net.owner(arch)
    assert owner is net.subnets[decision.split.group_of(arch)]
    x = torch.randn(1, 3, arch["resolution"], arch["resolution"])
    net.eval().set_active(arch)
    base.eval().set_active(arch)
    assert torch.allclose(net(x), base(x), atol=1e-6)
