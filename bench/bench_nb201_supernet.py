"""Training speed of the NB201 supernet against a plain per-edge implementation (CPU).

One training step = forward + backward + SGD step of one random subnet (single path, SPOS) on a
random batch. Both networks train the same sampled subnets, on the same images, with the same
optimizer settings. `plain` is laid out like the reference code (NAS-Bench-201 /
AutoDL-Projects `SearchCell`): a ModuleDict of every candidate op per edge, each convolution
with its own ReLU, node i = `sum(edge(node_j))` over its incoming edges, `none` computed as
`x.mul(0.)`; its stem, ResNet blocks and head are our `NB201Network`'s, so only the cells differ.

    python bench/bench_nb201_supernet.py                      # C=16, N=5, batch 64, 32 px
    python bench/bench_nb201_supernet.py --repeats 7 --steps 6 --threads 1

Each repeat times `--steps` steps of each implementation after one warm-up step, the order
rotating between repeats; images/s are medians over repeats, the ratio is ours / plain. They
are given per CPU second of the process (with one thread, what a loaded shared machine does not
distort much) and per wall second.
stdout: JSON lines (bench/README.md); the table goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import emit, log  # noqa: E402
from nas.arch import Arch  # noqa: E402
from search_spaces.nb201 import NB201Space  # noqa: E402
from search_spaces.nb201.cells import OPS  # noqa: E402
from search_spaces.nb201.network import NB201Network  # noqa: E402
from search_spaces.nb201.ops import avg_pool_3x3, conv_op  # noqa: E402


class Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def _plain_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return avg_pool_3x3()
    return conv_op(name, channels)  # ReLU-conv-BN: every conv edge has its own ReLU


class PlainCell(nn.Module):
    """The reference layout: every op of every edge a module; the active one runs per edge."""

    def __init__(self, channels: int, arch: dict[str, str]) -> None:
        super().__init__()
        self.arch = arch  # shared with the network, changed in place per step
        self.edges = nn.ModuleDict({
            f"{i}<-{j}": nn.ModuleDict({op: _plain_op(op, channels) for op in OPS})
            for i in range(1, 4) for j in range(i)
        })

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for i in range(1, 4):
            nodes.append(sum(  # type: ignore[arg-type]
                self.edges[f"{i}<-{j}"][self.arch[f"edge_{i}_{j}"]](nodes[j]) for j in range(i)
            ))
        return nodes[-1]


class PlainSupernet(nn.Module):
    def __init__(self, space: NB201Space) -> None:
        super().__init__()
        self.arch: dict[str, str] = dict(space.largest())
        self.network = NB201Network(
            lambda c: PlainCell(c, self.arch), channels=space.channels,
            cells_per_stage=space.cells_per_stage, num_classes=space.num_classes,
            in_channels=space.in_channels,
        )

    def set_active(self, arch: Arch) -> None:
        self.arch.update(arch)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.network(x)
        return out


BASELINES = {"plain": "plain per-edge (reference layout)",
             "plain-cl": "plain per-edge, channels-last inputs"}


def _stepper(net: Any, channels_last: bool) -> Callable[[Arch, Tensor, Tensor], None]:
    net.train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4,
                                nesterov=True)

    def step(arch: Arch, x: Tensor, y: Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        net.set_active(arch)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5, help="cells per stage, N")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plain-channels-last", action="store_true",
                        help="also time the plain network on channels-last inputs ('plain-cl'): "
                             "how much of the gain is the layout alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = NB201Space(channels=args.channels, cells_per_stage=args.cells, image_size=args.size)
    steps = {  # our supernet turns CPU inputs channels-last itself
        "ours": _stepper(space.build_supernet(), False),
        "plain": _stepper(PlainSupernet(space), False),
    }
    if args.plain_channels_last:
        steps["plain-cl"] = _stepper(PlainSupernet(space), True)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(args.steps + 1)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    images = args.steps * args.batch
    rates: dict[str, dict[str, list[float]]] = {"cpu": {n: [] for n in steps},
                                                "wall": {n: [] for n in steps}}
    names = list(steps)
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            steps[name](archs[0], x, y)  # warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            for arch in archs[1:]:
                steps[name](arch, x, y)
            rates["cpu"][name].append(images / (time.process_time() - cpu))
            rates["wall"][name].append(images / (time.perf_counter() - wall))
        log(f"repeat {repeat}: " + ", ".join(
            f"{n} {rates['cpu'][n][-1]:.1f} img/s CPU ({rates['wall'][n][-1]:.1f} wall)"
            for n in names))
    setting = f"C{args.channels}.N{args.cells}.b{args.batch}.{args.size}px.t{args.threads}"
    for clock in ("cpu", "wall"):
        median = {name: statistics.median(rates[clock][name]) for name in names}
        paired = statistics.median(
            a / b for a, b in zip(rates[clock]["ours"], rates[clock]["plain"], strict=True))
        log(f"median images/s per {clock} second: " + ", ".join(
            f"{name} {value:.1f}" for name, value in median.items())
            + f"; ours / plain {median['ours'] / median['plain']:.2f} "
            f"(median of the repeats' own ratios {paired:.2f})")
        for name in names[1:]:
            emit(f"nb201_train_step.{setting}.{clock}", median["ours"], "images/s",
                 baseline=BASELINES[name], baseline_value=median[name])


if __name__ == "__main__":
    main()
