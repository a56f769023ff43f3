"""The maps between Once-for-All's state dicts and our OFA supernets (names, shapes, both ways).

OFA's key names and shapes come from the committed fixtures (recorded from the `ofa` package by
tests/fixtures/ofa/make_ofa_fixture.py), so these tests run without it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from nas.errors import ConfigError, IncompatibleArtifactError
from nas.supernet import Supernet
from nas.supernet.ofa_import import ofa_network, ofa_supernet, supernet_to_ofa
from search_spaces import SPACES, create_space
from search_spaces.ofa_keymap import OFAKeyMap, TensorPair, ofa_alias
from tests.fixtures.ofa.fixture import MBV3, RESNET, load_ofa_fixture
from tests.fixtures.ofa.fixture import SPACES as FIXTURE_SPACES

SPACE_NAMES = ("ofa-mbv3", "ofa-resnet50")


@pytest.fixture(scope="module", params=[MBV3, RESNET])
def fixture(request: pytest.FixtureRequest) -> Any:
    return load_ofa_fixture(request.param)


@pytest.fixture(scope="module")
def imported(fixture: Any) -> Supernet:
    return ofa_supernet(fixture.state)


def randomized(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor of `net` (BN statistics and kernel matrices included) drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.fill_(7)
    return net


@pytest.mark.parametrize("space", SPACE_NAMES)
def test_key_map_pairs_every_tensor_of_the_supernet_once(space: str) -> None:
    cls: Any = SPACES.get(space)
    ours = cls.tiny().build_supernet().state_dict()
    pairs = ofa_network(space).key_map().pairs
    assert sorted(pair.ours for pair in pairs) == sorted(ours)
    assert len({pair.ofa for pair in pairs}) == len(pairs)


def test_key_map_names_are_ofas_own(fixture: Any) -> None:
    key_map = ofa_network(FIXTURE_SPACES[fixture.name]).key_map()
    assert [pair.ofa for pair in key_map.pairs] == fixture.keys()  # names and order


def test_import_then_export_gives_ofas_state_dict_back(fixture: Any, imported: Supernet) -> None:
    state, kwargs = supernet_to_ofa(imported)
    assert list(state) == fixture.keys()
    for key, tensor in fixture.state.items():
        assert torch.equal(state[key], tensor), key
    assert kwargs == {**fixture.meta["kwargs"], "dropout_rate": kwargs["dropout_rate"]}


@pytest.mark.parametrize(("space", "sizes"), [
    ("ofa-mbv3", {"num_classes": 10}),
    ("ofa-resnet50", {"width_scale": 0.25, "num_classes": 10}),
])
def test_export_then_import_round_trips_every_tensor(space: str, sizes: dict[str, Any]) -> None:
    net = create_space(space, resolutions=[128, 224], **sizes).build_supernet()
    state, _ = supernet_to_ofa(randomized(net, seed=3))  # type: ignore[arg-type]
    back = ofa_supernet(state, space=space, resolutions=[128, 224]).state_dict()
    for key, tensor in net.state_dict().items():
        assert torch.equal(back[key], tensor), key


def test_se_and_feature_mix_become_1x1_convs_in_ofas_layout() -> None:
    state, _ = supernet_to_ofa(create_space("ofa-mbv3", num_classes=10).build_supernet())
    assert state["feature_mix_layer.conv.weight"].shape == (1280, 960, 1, 1)
    assert state["blocks.5.conv.depth_conv.se.fc.reduce.weight"].shape[2:] == (1, 1)


def test_older_and_wrapped_names_are_read_as_ofas_loader_does(fixture: Any) -> None:
    key_map = ofa_network(FIXTURE_SPACES[fixture.name]).key_map()
    old = {
        "module." + key.replace("blocks.3.conv.", "blocks.3.mobile_inverted_conv."): tensor
        for key, tensor in fixture.state.items()
    }
    assert list(key_map.canonical(old)) == fixture.keys()


def test_ofa_alias_follows_ofas_rule_chain() -> None:
    assert ofa_alias("first_conv.bn.weight") == "first_conv.bn.bn.weight"
    assert ofa_alias("blocks.1.conv.point_linear.bn.bn.bias") == (
        "blocks.1.conv.point_linear.bn.bias"
    )
    assert ofa_alias("classifier.linear.weight") == "classifier.linear.linear.weight"
    key_map = OFAKeyMap([TensorPair("a.bn.bn.weight", "x")])
    assert list(key_map.canonical({"a.bn.weight": torch.ones(1)})) == ["a.bn.bn.weight"]


def test_width_multiplier_is_read_from_the_shapes(fixture: Any, imported: Supernet) -> None:
    expected = {MBV3: ("width_mult", 1.0), RESNET: ("width_scale", 0.25)}[fixture.name]
    assert imported.space.spec()["kwargs"][expected[0]] == expected[1]
    assert imported.space.spec()["kwargs"]["num_classes"] == 1000


def mbv3_ends(stem: int, classes: int, last: int) -> dict[str, Tensor]:
    """The two tensors the MobileNetV3 sizes are read from."""
    return {"first_conv.conv.weight": torch.empty(stem, 3, 3, 3),
            "classifier.linear.weight": torch.empty(classes, last)}


def test_mbv3_w12_is_recognised() -> None:
    kwargs = ofa_network("ofa-mbv3").space_kwargs(mbv3_ends(24, 7, 1536), width_mult=None,
                                                  source="x")
    assert kwargs == {"num_classes": 7, "in_channels": 3, "width_mult": 1.2}


def error_of(state: dict[str, Tensor], **kwargs: Any) -> str:
    with pytest.raises(IncompatibleArtifactError) as info:
        ofa_supernet(state, source="net.pth", **kwargs)
    return str(info.value)


def test_a_tensor_without_a_place_is_named(fixture: Any) -> None:
    message = error_of({**fixture.state, "blocks.1.conv.extra.weight": torch.ones(1)})
    assert "net.pth: tensor 'blocks.1.conv.extra.weight' has no place in space" in message


def mapping_error(fixture: Any, net: Supernet, state: dict[str, Tensor]) -> str:
    key_map = ofa_network(net.space.name).key_map()
    with pytest.raises(IncompatibleArtifactError) as info:
        key_map.from_ofa(state, net.state_dict(), source="net.pth", what="the space")
    return str(info.value)


def test_a_missing_tensor_is_named_but_batch_counts_may_be_missing(
    fixture: Any, imported: Supernet
) -> None:
    key = fixture.keys()[1]
    missing = {k: v for k, v in fixture.state.items() if k != key}
    assert f"net.pth: tensor '{key}' is missing" in mapping_error(fixture, imported, missing)
    counts = {k: v for k, v in fixture.state.items() if not k.endswith("num_batches_tracked")}
    key_map = ofa_network(imported.space.name).key_map()
    key_map.from_ofa(counts, imported.state_dict(), source="net.pth", what="the space")


def test_a_shape_mismatch_names_the_tensor_and_the_fix(fixture: Any, imported: Supernet) -> None:
    key = fixture.keys()[-1]  # the classifier bias: the class count is read from the weight
    message = mapping_error(fixture, imported, {**fixture.state, key: fixture.state[key][:10]})
    assert f"tensor '{key}' has shape (10,)" in message and "expects (1000,)" in message
    assert "--width-mult" in message


def test_a_wrong_width_multiplier_is_a_shape_mismatch(fixture: Any) -> None:
    width = {MBV3: 1.2, RESNET: 0.5}[fixture.name]
    assert "pass the --width-mult the network was built with" in error_of(
        fixture.state, width_mult=width
    )


def test_an_unsupported_mbv3_width_says_which_exist() -> None:
    state = {**mbv3_ends(8, 1000, 1280), "final_expand_layer.conv.weight": torch.ones(1)}
    message = error_of(state)
    assert "stem width 8" in message and "1.0: 16/1280, 1.2: 24/1536" in message


def test_a_file_of_another_network_is_refused() -> None:
    message = error_of({"features.0.weight": torch.ones(1)})
    assert "OFAMobileNetV3" in message and "OFAResNets" in message


@pytest.mark.parametrize("space", SPACE_NAMES)
def test_small_input_supernets_have_no_ofa_counterpart(space: str) -> None:
    cls: Any = SPACES.get(space)
    with pytest.raises(ConfigError, match="stride-2 stem"):
        supernet_to_ofa(cls.tiny().build_supernet())
