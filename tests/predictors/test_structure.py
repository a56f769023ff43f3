"""Structural features: they add up to the spaces' own cost model, and find cut-off cells."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.features import Featurizer, key_universe, make_featurizer
from predictors.structure.nb201 import active_edges
from search_spaces import create_space


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50"])
def test_macs_add_up_to_complexity(name: str) -> None:
    space = create_space(name, num_classes=10, resolutions=[16, 32], image_size=32)
    featurizer = make_featurizer(space, key_universe(space, space.resolutions))
    assert featurizer.describer is not None
    rng = np.random.default_rng(0)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(10)]
    macs = featurizer.transform(archs).structure[:, featurizer.describer.names.index("total.macs")]
    expected = [space.complexity(a)["macs"] for a in archs]
    np.testing.assert_allclose(macs, expected, rtol=1e-6)


def test_fast_and_generic_featurizers_agree_on_structure() -> None:
    space = create_space("ofa-mbv3", num_classes=10, resolutions=[16, 32], image_size=32)
    keys = key_universe(space, space.resolutions)
    fast, generic = make_featurizer(space, keys), Featurizer(space, keys)
    assert type(fast) is not Featurizer
    archs = [space.sample(np.random.default_rng(1)) for _ in range(5)]
    np.testing.assert_allclose(fast.transform(archs).structure,
                               generic.transform(archs).structure)


def test_nb201_active_edges_and_cut_off_cells() -> None:
    space = create_space("nb201")
    featurizer = make_featurizer(space, [])
    cut = space.normalize(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|")
    dead_end = space.normalize(
        "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|")
    ops = featurizer.transform([cut, dead_end]).encoded.reshape(2, 6, 5).argmax(axis=2)
    active = active_edges(ops)
    assert not active[0].any()
    # node 1's conv leads nowhere and node 2 is unreachable: only edge 3<-0 counts
    assert active[1].tolist() == [False, False, False, True, False, False]
    structure = featurizer.transform([cut, dead_end, space.largest()]).structure
    names = featurizer.describer.names  # type: ignore[union-attr]
    assert structure[:, names.index("disconnected")].tolist() == [1.0, 0.0, 0.0]
    # all-`none` cells have no multiply-accumulates: the difference is the cells' share
    cells = space.complexity(space.largest())["macs"] - space.complexity(space.smallest())["macs"]
    assert structure[2, names.index("all.total.macs")] == pytest.approx(cells, rel=1e-9)
    assert structure[0, names.index("active.total.macs")] == 0.0


def test_structure_is_computed_only_when_read() -> None:
    space = create_space("nb201")
    features = make_featurizer(space, []).transform([space.largest()])
    assert "structure" not in features.__dict__
    part = features.take(np.array([0]))
    assert part.structure.shape[1] > 0 and part.describer is features.describer
