"""Reference parameter counts from Once-for-All's own `get_active_subnet()`.

Run in the peers venv (see ../shared/peers/README.md), never in the project's venv:

    $NAS_PEERS_PYTHON bench/ofa_param_reference.py

It prints one JSON line per config: the space, width, class count, OFA-format subnet config and
the parameter count of OFA's extracted subnet. tests/search_spaces/test_ofa_parity.py holds a copy
of these numbers; our own extraction must match them exactly.
"""

import json
import os
import random
import sys
from pathlib import Path

# the reference packages beside the project (../shared/peers) unless NAS_PEERS_DIR says
PEERS_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "peers")

sys.path.insert(0, os.environ.get("NAS_PEERS_DIR", PEERS_DIR))
import peer_compat  # noqa: E402

peer_compat.apply()

from ofa.imagenet_classification.elastic_nn.networks import (  # noqa: E402
    OFAMobileNetV3,
    OFAResNets,
)


def count(net):
    return sum(p.numel() for p in net.parameters())


def mbv3_configs(rng):
    yield "max", {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}
    yield "min", {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
    for name in ("random0", "random1"):
        yield (
            name,
            {
                "ks": [rng.choice([3, 5, 7]) for _ in range(20)],
                "e": [rng.choice([3, 4, 6]) for _ in range(20)],
                "d": [rng.choice([2, 3, 4]) for _ in range(5)],
            },
        )


def resnet_configs(rng):
    yield "max", {"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6}
    yield "min", {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6}
    yield (
        "random0",
        {
            "d": [rng.choice([0, 1, 2]) for _ in range(5)],
            "e": [rng.choice([0.2, 0.25, 0.35]) for _ in range(18)],
            "w": [rng.choice([0, 1, 2]) for _ in range(6)],
        },
    )


def main():
    rng = random.Random(0)
    for width in (1.0, 1.2):
        for classes in (1000, 10):
            net = OFAMobileNetV3(
                n_classes=classes,
                width_mult=width,
                ks_list=[3, 5, 7],
                expand_ratio_list=[3, 4, 6],
                depth_list=[2, 3, 4],
            )
            for name, cfg in mbv3_configs(random.Random(0)):
                net.set_active_subnet(**cfg)
                params = count(net.get_active_subnet(preserve_weight=False))
                print(
                    json.dumps(
                        {
                            "space": "ofa-mbv3",
                            "width_mult": width,
                            "num_classes": classes,
                            "name": name,
                            "config": cfg,
                            "params": params,
                        }
                    )
                )
    for classes in (1000, 10):
        net = OFAResNets(
            n_classes=classes,
            depth_list=[0, 1, 2],
            expand_ratio_list=[0.2, 0.25, 0.35],
            width_mult_list=[0.65, 0.8, 1.0],
        )
        for name, cfg in resnet_configs(random.Random(1)):
            net.set_active_subnet(**cfg)
            params = count(net.get_active_subnet(preserve_weight=False))
            print(
                json.dumps(
                    {
                        "space": "ofa-resnet50",
                        "num_classes": classes,
                        "name": name,
                        "config": cfg,
                        "params": params,
                    }
                )
            )
    del rng


if __name__ == "__main__":
    main()
