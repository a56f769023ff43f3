"""Parity with the Once-for-All package itself, at full size, both ways.

Skipped unless `ofa` (pip `ofa==0.1.0.post202307202001`) imports; the committed fixtures
(test_supernet_import.py) cover the same checks without it. With a current CPU torch, OFA also
needs a torchvision or a stand-in for it; ../shared/peers/README.md shows one way: with `ofa`
installed (`pip install --no-deps --target DIR ofa==0.1.0.post202307202001`),

    PYTHONPATH=DIR:../shared/peers pytest tests/nas/test_ofa_reference.py
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.artifacts import RunDir
from nas.export.ofa_checkpoint import export_ofa_checkpoint
from nas.supernet import Supernet
from nas.supernet.ofa_import import import_ofa_supernet, supernet_to_ofa
from nas.supernet.weights import load_trained_supernet, save_weights
from search_spaces import create_space
from tests.fixtures.ofa.random_state import measure_running_stats, random_input, random_state

try:
    try:  # the peers' import shims (a stand-in torchvision), when on the path
        import peer_compat  # type: ignore[import-not-found]

        peer_compat.apply()
    except ImportError:
        pass
    from ofa.imagenet_classification.elastic_nn import networks as ofa_networks
except Exception as exc:  # absent, or its torchvision does not load on this torch
    pytest.skip(f"the Once-for-All package is not importable ({type(exc).__name__}: {exc})",
                allow_module_level=True)

TOLERANCE = 1e-4
RESOLUTIONS = (128, 160, 192, 224)


def mbv3_config(rng: random.Random) -> dict[str, Any]:
    return {"ks": [rng.choice([3, 5, 7]) for _ in range(20)],
            "e": [rng.choice([3, 4, 6]) for _ in range(20)],
            "d": [rng.choice([2, 3, 4]) for _ in range(5)]}


def resnet_config(rng: random.Random) -> dict[str, Any]:
    return {"d": [rng.choice([0, 2])] + [rng.choice([0, 1, 2]) for _ in range(4)],
            "e": [rng.choice([0.2, 0.25, 0.35]) for _ in range(18)],
            "w": [rng.choice([0, 1, 2]) for _ in range(6)]}


NETWORKS = {
    "ofa-mbv3": ("OFAMobileNetV3", {"n_classes": 1000, "dropout_rate": 0, "width_mult": 1.2,
                                    "ks_list": [3, 5, 7], "expand_ratio_list": [3, 4, 6],
                                    "depth_list": [2, 3, 4]}, mbv3_config),
    "ofa-resnet50": ("OFAResNets", {"n_classes": 1000, "dropout_rate": 0,
                                    "depth_list": [0, 1, 2],
                                    "expand_ratio_list": [0.2, 0.25, 0.35],
                                    "width_mult_list": [0.65, 0.8, 1.0]}, resnet_config),
}


def ofa_net(cls_name: str, kwargs: dict[str, Any]) -> Any:
    return getattr(ofa_networks, cls_name)(**kwargs)


@torch.no_grad()
def compare(ofa: Any, ours: Supernet, sample: Any, *, seed: int, count: int) -> list[float]:
    """Max abs logit differences of `count` random subnets, OFA's extracted vs ours."""
    rng, differences = random.Random(seed), []
    for index in range(count):
        config, side = sample(rng), RESOLUTIONS[index % len(RESOLUTIONS)]
        ofa.set_active_subnet(**config)
        x = random_input((2, 3, side, side), seed=seed + index)
        expected = ofa.get_active_subnet(preserve_weight=True).eval()(x)
        arch = ours.space.normalize({**config, "r": side})
        differences.append(float((ours.extract_subnet(arch).eval()(x) - expected).abs().max()))
    return differences


@pytest.mark.slow
@pytest.mark.parametrize("space", list(NETWORKS))
def test_ofa_checkpoints_import_with_ofas_logits(space: str, tmp_path: Path) -> None:
    cls_name, kwargs, sample = NETWORKS[space]
    ofa = ofa_net(cls_name, kwargs)
    keys = [(key, tuple(value.shape)) for key, value in ofa.state_dict().items()]
    ofa.load_state_dict(random_state(keys, seed=5))
    ofa.set_max_net()
    measure_running_stats(ofa, seed=6)
    path = tmp_path / "ofa.pth"
    torch.save({"state_dict": ofa.state_dict()}, path)
    run = RunDir(tmp_path / "runs", "imported")
    import_ofa_supernet(path, run)
    differences = compare(ofa.eval(), load_trained_supernet(run), sample, seed=7, count=4)
    assert max(differences) <= TOLERANCE, differences


@pytest.mark.slow
@pytest.mark.parametrize("space", list(NETWORKS))
def test_our_supernets_load_into_ofa_with_the_same_logits(space: str) -> None:
    cls_name, kwargs, sample = NETWORKS[space]
    sizes = {"width_mult": 1.2} if space == "ofa-mbv3" else {}
    ours = create_space(space, resolutions=list(RESOLUTIONS), **sizes).build_supernet()
    ours.set_active(ours.space.largest())
    measure_running_stats(ours, seed=8)
    state, ofa_kwargs = supernet_to_ofa(ours)
    ofa = ofa_net(cls_name, ofa_kwargs)
    ofa.load_state_dict(state)
    differences = compare(ofa.eval(), ours.eval(), sample, seed=9, count=4)
    assert max(differences) <= TOLERANCE, differences


@pytest.mark.slow
@pytest.mark.parametrize("space", list(NETWORKS))
def test_nas_export_format_ofa_is_read_by_ofa_with_the_same_logits(
    space: str, tmp_path: Path
) -> None:
    """The user's path: `nas export --format ofa` of a run, then OFA builds its class from the
    written ofa_net.json and loads the file as its model zoo does."""
    cls_name, _, sample = NETWORKS[space]
    sizes = {"width_mult": 1.2} if space == "ofa-mbv3" else {}
    ours = create_space(space, resolutions=list(RESOLUTIONS), **sizes).build_supernet()
    ours.load_state_dict(random_state([(k, tuple(v.shape)) for k, v in
                                       ours.state_dict().items()], seed=10))
    ours.set_active(ours.space.largest())
    measure_running_stats(ours, seed=11)
    run = RunDir(tmp_path / "runs", "ours")
    run.update_manifest(space=ours.space.spec())
    save_weights(run, ours, space_spec=ours.space.spec(), train_config={})
    result = export_ofa_checkpoint(run)
    assert result.meta["ofa_class"] == cls_name
    ofa = ofa_net(cls_name, result.meta["ofa_kwargs"])
    ofa.load_state_dict(torch.load(result.file, map_location="cpu")["state_dict"])
    differences = compare(ofa.eval(), load_trained_supernet(run), sample, seed=12, count=4)
    assert max(differences) <= TOLERANCE, differences
