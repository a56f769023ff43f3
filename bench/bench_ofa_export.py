"""`nas export --format ofa` at full size: time, file size, and OFA's logits from the file.

For each network (OFA's `ofa_mbv3_d234_e346_k357_w1.0`, `..._w1.2`, `ofa_resnet50`) it builds
our supernet with random weights and BN statistics measured then perturbed (the parity
fixtures' recipe), saves it as a run, runs `export_ofa_checkpoint` (write, read back through
the import, bit-exact comparison), then builds OFA's class from the written `ofa_net.json`,
loads the file as OFA's model zoo does, and compares `get_active_subnet(preserve_weight=True)`
with our extracted subnet on the same images: the largest and smallest subnet and random ones
at 128, 160, 192 and 224 px.

Needs the `ofa` package importable (never a dependency of the project), for example:

    pip install --no-deps --target /tmp/ofa-ref ofa==0.1.0.post202307202001
    python bench/bench_ofa_export.py --ofa-path /tmp/ofa-ref --peers ../shared/peers

stdout: JSON lines (`ofa_export.<network>.seconds`, `.megabytes`, `.max_abs_diff.<subnet>`).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import emit, log  # noqa: E402

NETWORKS = {
    "mbv3_w1.0": ("ofa-mbv3", {"width_mult": 1.0}),
    "mbv3_w1.2": ("ofa-mbv3", {"width_mult": 1.2}),
    "resnet50": ("ofa-resnet50", {}),
}
RESOLUTIONS = (128, 160, 192, 224)


def ofa_networks(ofa_path: str | None, peers: str | None) -> Any:
    for path in (ofa_path, peers):
        if path:
            sys.path.insert(0, path)
    if peers:
        import peer_compat  # a stand-in torchvision for OFA on a CPU-only torch

        peer_compat.apply()
    from ofa.imagenet_classification.elastic_nn import networks

    return networks


def subnets(space: str, rng: random.Random) -> list[tuple[str, dict[str, Any], int]]:
    if space == "ofa-mbv3":
        largest = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}
        smallest = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}

        def sample() -> dict[str, Any]:
            return {"ks": [rng.choice([3, 5, 7]) for _ in range(20)],
                    "e": [rng.choice([3, 4, 6]) for _ in range(20)],
                    "d": [rng.choice([2, 3, 4]) for _ in range(5)]}
    else:
        largest = {"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6}
        smallest = {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6}

        def sample() -> dict[str, Any]:
            return {"d": [rng.choice([0, 2])] + [rng.choice([0, 1, 2]) for _ in range(4)],
                    "e": [rng.choice([0.2, 0.25, 0.35]) for _ in range(18)],
                    "w": [rng.choice([0, 1, 2]) for _ in range(6)]}
    cases = [("max@224", largest, 224), ("min@128", smallest, 128)]
    return cases + [(f"random{i}@{r}", sample(), r) for i, r in enumerate(RESOLUTIONS)]


@torch.no_grad()
def measure(name: str, space_name: str, sizes: dict[str, Any], networks: Any, seed: int) -> None:
    from nas.artifacts import RunDir
    from nas.export.ofa_checkpoint import export_ofa_checkpoint
    from nas.supernet.weights import load_trained_supernet, save_weights
    from search_spaces import create_space
    from tests.fixtures.ofa.random_state import measure_running_stats, random_input, random_state

    ours = create_space(space_name, resolutions=list(RESOLUTIONS), **sizes).build_supernet()
    keys = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    ours.load_state_dict(random_state(keys, seed=seed))
    ours.set_active(ours.space.largest())
    measure_running_stats(ours, seed=seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp), "bench")
        run.update_manifest(space=ours.space.spec())
        save_weights(run, ours, space_spec=ours.space.spec(), train_config={})
        start = time.perf_counter()
        result = export_ofa_checkpoint(run)
        emit(f"ofa_export.{name}.seconds", time.perf_counter() - start, "s",
             tensors=result.meta["tensors"], note="write + read back + bit-exact compare")
        emit(f"ofa_export.{name}.megabytes", result.file.stat().st_size / 1e6, "MB")
        ofa = getattr(networks, result.meta["ofa_class"])(**result.meta["ofa_kwargs"])
        ofa.load_state_dict(torch.load(result.file, map_location="cpu")["state_dict"])
        ofa.eval()
        mine = load_trained_supernet(run)
    for index, (label, config, side) in enumerate(subnets(space_name, random.Random(seed))):
        x = random_input((2, 3, side, side), seed=seed + 10 + index)
        ofa.set_active_subnet(**config)
        expected = ofa.get_active_subnet(preserve_weight=True).eval()(x)
        got = mine.extract_subnet(mine.space.normalize({**config, "r": side})).eval()(x)
        diff = float((got - expected).abs().max())
        emit(f"ofa_export.{name}.max_abs_diff.{label}", diff, "logit", exact=f"{diff:.3e}",
             logits_scale=round(float(expected.abs().max()), 3))
        log(f"{name} {label}: max |logit diff| {diff:.2e} (|logits| up to "
            f"{float(expected.abs().max()):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ofa-path", default=None, help="folder holding the ofa package")
    parser.add_argument("--peers", default=None, help="folder of peer_compat.py")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = ofa_networks(args.ofa_path, args.peers)
    for name in args.networks.split(","):
        space, sizes = NETWORKS[name]
        measure(name, space, sizes, networks, args.seed)


if __name__ == "__main__":
    main()
