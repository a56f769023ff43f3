"""Trainers are found by the space's `family` and the method, never by the space's name."""

from __future__ import annotations

import pytest

from nas.errors import ConfigError
from nas.train.config import DEFAULT_METHOD, TrainConfig
from nas.train.registry import TRAINERS, TrainerRegistry, family_of
from nas.train.supernet_run import trainer_class
from nas.train.trainer import RunTrainer
from search_spaces import SPACES, builtin_space_names


@pytest.mark.parametrize("family", TRAINERS.families())
def test_every_registered_trainer_is_a_run_trainer(family: str) -> None:
    for method in TRAINERS.methods(family):
        assert issubclass(TRAINERS.trainer(family, method), RunTrainer)


@pytest.mark.parametrize("name", builtin_space_names())
def test_every_space_declares_its_family(name: str) -> None:
    assert "family" in vars(SPACES.get(name)), name  # its own line, not the base's default
    assert family_of(name) == SPACES.get(name).family


def test_methods_resolve_per_family() -> None:
    assert TRAINERS.methods("once-for-all") == ("sandwich", "ps", "spos")
    assert TRAINERS.methods("nb201")[0] == "spos"  # single path first: the NB201 standard
    assert TRAINERS.resolve("darts", DEFAULT_METHOD, default=DEFAULT_METHOD) == "darts"
    assert TRAINERS.resolve("darts", "gdas", default=DEFAULT_METHOD) == "gdas"
    with pytest.raises(ConfigError, match="expected one of darts, darts-2nd.*got 'ps'"):
        TRAINERS.resolve("darts", "ps", default=DEFAULT_METHOD)
    with pytest.raises(ConfigError, match="family 'tabular' have no trainer"):
        TRAINERS.resolve("tabular", DEFAULT_METHOD, default=DEFAULT_METHOD)


def test_dispatch_follows_the_family() -> None:
    assert trainer_class(TrainConfig()).kind == "once-for-all"
    assert trainer_class(TrainConfig(space="darts", method="pc-darts")).kind == "bilevel"


def test_one_family_can_offer_several_trainers() -> None:
    registry = TrainerRegistry()
    registry.register("cell", "spos", "nas.train.once_for_all:OnceForAllTrainer")
    registry.register_all("cell", ("darts", "gdas"), "nas.train.bilevel:BilevelTrainer")
    assert registry.methods("cell") == ("spos", "darts", "gdas")
    assert registry.trainer("cell", "gdas").kind == "bilevel"
    assert registry.trainer("cell", "spos").kind == "once-for-all"
    with pytest.raises(Exception, match="registered twice"):
        registry.register("cell", "spos", "x:Y")
