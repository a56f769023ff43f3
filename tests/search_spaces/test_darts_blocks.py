"""DARTS per-op latency blocks: keys of a genotype, the key universe, `block_module`, profiling."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from nas.errors import ConfigError
from nas.profile.devices import create_device
from nas.profile.measure import MeasureSettings
from nas.profile.session import ProfilePlan, Session
from nas.profile.store import ProfileStore
from search_spaces.darts.blocks import parse_op_key
from search_spaces.darts.extract import build_eval_network, copy_weights
from search_spaces.darts.genotypes import CELL_OPS
from search_spaces.darts.space import DartsSpace

FAST = MeasureSettings(warmup=1, warmup_ms=0, repeats=3, target_ms=1, max_repeats=3)


def tiny() -> DartsSpace:
    return DartsSpace(init_channels=4, layers=3, num_classes=3, image_size=8)


def test_block_keys_are_the_kept_ops_at_their_edge_shapes() -> None:
    space = tiny()
    arch = space.largest()
    arch["reduce"][0] = ["max_pool_3x3", 0]  # a strided edge of the first reduction cell
    keys = space.block_keys(arch)
    assert len(keys) == 8 * space.layers  # 8 kept edges per cell
    universe = set(space.block_key_universe())
    assert set(keys) <= universe
    # 5 edge shapes at 8 px: c4/s8 normal, c8 reduce (s8 x2, s4 x1), c16 reduce (s4 x2, s2 x1)
    assert len(universe) == len(CELL_OPS) * 5
    assert keys[0] == "darts/sep_conv_5x5/c4/s8/x1"
    assert keys[8] == "darts/max_pool_3x3/c8/s8/x2"  # cell 1 is the first reduction (3 // 3)
    assert keys[11] == "darts/sep_conv_5x5/c8/s4/x1"  # node 1 reads node 0: already reduced
    assert space.block_key_universe([16]) != space.block_key_universe([8])


def test_block_module_builds_one_op_at_its_edge_shape() -> None:
    supernet = tiny().build_supernet()
    module, shape = supernet.block_module("darts/dil_conv_3x3/c8/s8/x2")
    assert shape == (1, 8, 8, 8)
    assert module(torch.zeros(2, *shape[1:])).shape == (2, 8, 4, 4)
    assert parse_op_key("darts/skip_connect/c8/s8/x2") == ("skip_connect", 8, 8, 2)
    with pytest.raises(ConfigError, match="darts/<op>"):
        supernet.block_module("darts/conv_7x7/c8/s8/x1")


def test_profile_session_measures_every_darts_op_key(tmp_path: Path) -> None:
    space = tiny()
    store = ProfileStore(tmp_path, "cpu")
    session = Session(space, space.build_supernet(), create_device("cpu", threads=1), store,
                      ProfilePlan(samples=2, settings=FAST))
    assert session.measure_blocks() == len(space.block_key_universe())
    records = store.records(store.blocks_path)
    assert {r["block"] for r in records} == set(space.block_key_universe())
    assert all(r["latency_ms"] > 0 for r in records)


def test_pc_darts_eval_network_is_fresh_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    space = tiny()
    supernet = space.build_supernet(partial_channels=2)
    genotype = space.largest()
    with caplog.at_level(logging.WARNING, logger="search_spaces.darts.extract"):
        net = supernet.extract_subnet(genotype)
    assert "fresh weights" in caplog.text and "K=2" in caplog.text
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 3)
    with pytest.raises(ConfigError, match="nas train --genotype"):
        build_eval_network(supernet, genotype, require_weights=True)
    with pytest.raises(ConfigError, match="K=2"):
        copy_weights(supernet, space.build_network(genotype), genotype)
    # K = 1 still copies: the stem equals the supernet's
    full = space.build_supernet(partial_channels=1)
    copied = build_eval_network(full, genotype, require_weights=True)
    assert torch.equal(copied.stem.state_dict()["0.weight"], full.stem.state_dict()["0.weight"])
