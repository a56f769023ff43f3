"""Training throughput (images/s): sandwich steps, and the largest and smallest subnets alone.

A sandwich step trains the largest, the smallest and 2 random subnets on one batch (forward,
backward, one SGD step); its figure counts distinct images (the peers README's convention).

Measures our `ofa-mbv3` supernet and, when run with the peers' python, OFA's `OFAMobileNetV3`
on the same space (OFA strides, no small-input variant), random data, SGD step included:

    python bench/supernet_throughput.py --threads 1 --res 32 --batch 32           # ours
    $NAS_PEERS_PYTHON bench/supernet_throughput.py --peer --threads 1 ...   # OFA

Prints one JSON line per (subnet, repeat median). Timings on a shared machine are noisy:
compare medians of runs made one after the other, never concurrently.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

# the reference packages beside the project (../shared/peers) unless NAS_PEERS_DIR says
PEERS_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "peers")


def build(peer: bool, classes: int, small_input: bool = False):
    if peer:
        sys.path.insert(0, os.environ.get("NAS_PEERS_DIR", PEERS_DIR))
        import peer_compat

        peer_compat.apply()
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

        net = OFAMobileNetV3(n_classes=classes, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                             depth_list=[2, 3, 4])
        largest = {"ks": 7, "e": 6, "d": 4}
        smallest = {"ks": 3, "e": 3, "d": 2}
        import random

        rng = random.Random(0)

        def set_active(arch):
            if arch == "random":
                net.set_active_subnet(ks=[rng.choice([3, 5, 7]) for _ in range(20)],
                                      e=[rng.choice([3, 4, 6]) for _ in range(20)],
                                      d=[rng.choice([2, 3, 4]) for _ in range(5)])
            else:
                net.set_active_subnet(**arch)

        return net, set_active, largest, smallest
    from search_spaces import create_space

    space = create_space("ofa-mbv3", num_classes=classes, image_size=224,
                         small_input=small_input, resolutions=[32, 64, 128, 224])
    net = space.build_supernet()
    import numpy as np

    rng = np.random.default_rng(0)

    def set_active(arch):
        net.set_active(space.sample(rng) if arch == "random" else arch)

    return net, set_active, space.largest(), space.smallest()


def measure(net, step_images: int, res: int, batch: int, steps: int, channels_last: bool) -> float:
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    for _ in range(2):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for _ in range(steps):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step_images * steps / (time.perf_counter() - start)


def measure_sandwich(net, set_active, largest, smallest, res, batch, steps) -> float:
    """Distinct images/s of sandwich steps: largest + smallest + 2 random subnets per batch."""
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step():
        for arch in (largest, smallest, "random", "random"):
            set_active(arch)
            torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--small-input", action="store_true",
                        help="ours only: the small-input strides (total downsampling 8)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net, set_active, largest, smallest = build(args.peer, 10, args.small_input)
    net.train()
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    runs = [measure_sandwich(net, set_active, largest, smallest, args.res, args.batch, args.steps)
            for _ in range(args.repeats)]
    print(json.dumps({"impl": "ofa" if args.peer else "nas", "subnet": "sandwich",
                      "res": args.res, "batch": args.batch, "threads": args.threads,
                      "small_input": args.small_input,
                      "images_per_s": round(statistics.median(runs), 1)}))
    for name, arch in (("largest", largest), ("smallest", smallest)):
        set_active(arch)
        runs = [measure(net, args.batch, args.res, args.batch, args.steps, args.channels_last)
                for _ in range(args.repeats)]
        print(json.dumps({"impl": "ofa" if args.peer else "nas", "subnet": name, "res": args.res,
                          "batch": args.batch, "threads": args.threads,
                          "small_input": args.small_input,
                          # ours always runs NHWC activations inside forward
                          "channels_last": args.channels_last or not args.peer,
                          "images_per_s": round(statistics.median(runs), 1)}))


if __name__ == "__main__":
    main()
