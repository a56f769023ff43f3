"""Step time and peak memory of the DARTS-family search steps (CPU).

Each method runs in its own process (peak RSS is per process): build the supernet, then time
`--steps` full search steps (architecture step + weight step) after one warm-up step. The
settings default to the ones of the peer figures in ../shared/peers/README.md: C=16, 8 cells,
batch 16 + 16, 32 px, 2 threads. `plain` is a straightforward per-edge implementation (one
module per op per edge, every op including `none` computed, full backward in both steps), the
layout of the reference code, timed on the same machine for a like-for-like comparison.
`darts:torch` is our first-order step with the search cell's CPU kernels
(`search_spaces/darts/kernels.py`) swapped back to the plain torch calls: what the kernels buy.

    python bench/bench_darts.py                       # all methods
    python bench/bench_darts.py --methods darts,plain --steps 2 --threads 2 --repeat 3

Timings on a shared machine are noisy: compare methods from the same invocation. `--repeat R`
runs the method list R times, rotating the order, and reports per-method medians over all
timed steps. stdout: one JSON line per figure (bench/README.md); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

METHODS = ("darts", "darts-2nd", "pc-darts", "gdas", "plain")
PEERS = {"darts": ("plain reimplementation, first order (peers/README.md)", 3.65),
         "darts-2nd": ("plain reimplementation, second order (peers/README.md)", 9.7)}
NNI_DARTS_S = 4.4  # NNI 3.0 first-order DARTS, s/step (peers/README.md)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _plain_supernet(space: Any) -> Any:
    """A per-edge DARTS search network, like the reference implementation (for comparison)."""
    import torch
    from torch import nn

    from search_spaces.darts.counting import cell_plans
    from search_spaces.darts.genotypes import PRIMITIVES
    from search_spaces.darts.ops import FactorizedReduce, ReLUConvBN, build_op

    class MixedOp(nn.Module):
        def __init__(self, c: int, stride: int) -> None:
            super().__init__()
            ops = []
            for name in PRIMITIVES:
                op = build_op(name, c, stride, affine=False)
                if "pool" in name:
                    op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
                ops.append(op)
            self.ops = nn.ModuleList(ops)

        def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return sum(wi * op(x) for wi, op in zip(w, self.ops, strict=True))  # type: ignore[return-value]

    class Cell(nn.Module):
        def __init__(self, plan: Any) -> None:
            super().__init__()
            c = plan.channels
            self.reduction = plan.reduction
            self.pre0 = (FactorizedReduce(plan.c_prev_prev, c, False) if plan.reduction_prev
                         else ReLUConvBN(plan.c_prev_prev, c, 1, 1, 0, False))
            self.pre1 = ReLUConvBN(plan.c_prev, c, 1, 1, 0, False)
            self.ops = nn.ModuleList(
                MixedOp(c, 2 if plan.reduction and j < 2 else 1)
                for i in range(4) for j in range(i + 2)
            )

        def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            states = [self.pre0(s0), self.pre1(s1)]
            offset = 0
            for _ in range(4):
                s = sum(self.ops[offset + j](h, w[offset + j]) for j, h in enumerate(states))
                offset += len(states)
                states.append(s)  # type: ignore[arg-type]
            return torch.cat(states[2:], dim=1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = space.init_channels
            self.stem = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(3 * c))
            plans = list(cell_plans(c, space.layers, space.image_size))
            self.cells = nn.ModuleList(Cell(p) for p in plans)
            self.classifier = nn.Linear(4 * plans[-1].channels, space.num_classes)
            self.alphas_normal = nn.Parameter(1e-3 * torch.randn(14, 8))
            self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(14, 8))

        def arch_parameters(self) -> list[nn.Parameter]:
            return [self.alphas_normal, self.alphas_reduce]

        def weight_parameters(self) -> list[nn.Parameter]:
            return [p for n, p in self.named_parameters() if not n.startswith("alphas")]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            wn = torch.softmax(self.alphas_normal, -1)
            wr = torch.softmax(self.alphas_reduce, -1)
            s0 = s1 = self.stem(x)
            for cell in self.cells:
                s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
            return self.classifier(s1.mean((2, 3)))

    return Net()


def _plain_torch_kernels() -> None:
    """Swap the search cell's CPU kernels back to the plain torch calls (same maths)."""
    import torch.nn.functional as F

    from search_spaces.darts import mixed

    def depthwise(x: Any, w: Any, stride: int = 1, padding: int = 0, dilation: int = 1,
                  shared: Any = None) -> Any:
        return F.conv2d(x, w, None, stride, padding, dilation, groups=x.shape[1])

    def pools(x: Any, stride: int) -> tuple[Any, Any]:
        return (F.max_pool2d(x, 3, stride, 1),
                F.avg_pool2d(x, 3, stride, 1, count_include_pad=False))

    mixed.depthwise_conv = depthwise  # type: ignore[assignment]
    mixed.grouped_pointwise = lambda x, w, g: F.conv2d(x, w, groups=g)
    mixed.pools_3x3 = pools


def _worker(method: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    if method == "darts:torch":
        _plain_torch_kernels()
        method = "darts"
    from nas.train.bilevel import BilevelConfig, build_search_network
    from nas.train.darts_steps import arch_step_first_order, arch_step_second_order, weight_step
    from search_spaces.darts.space import DartsSpace

    space = DartsSpace(init_channels=args.channels, layers=args.layers, image_size=args.size)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 3, args.size, args.size, generator=g),
                torch.randint(0, 10, (args.batch,), generator=g)) for _ in range(2)]
    if method == "plain":
        net: Any = _plain_supernet(space)
    else:
        net = build_search_network(BilevelConfig(method=method, partial_channels=args.k), space)
        net.tau = 1.0
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999))

    def step() -> None:
        (xw, yw), (xa, ya) = batches
        if method == "plain":  # the reference pattern: full backward in both steps
            a_opt.zero_grad()
            F.cross_entropy(net(xa), ya).backward()
            a_opt.step()
            w_opt.zero_grad()
            F.cross_entropy(net(xw), yw).backward()
            torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            w_opt.step()
            return
        if method == "darts-2nd":
            arch_step_second_order(net, a_opt, w_opt, (xw, yw), (xa, ya), F.cross_entropy,
                                   lr=0.025)
        else:
            arch_step_first_order(net, a_opt, xa, ya, F.cross_entropy)
        weight_step(net, w_opt, xw, yw, grad_clip=5.0)

    before = _rss_mib()
    step()  # warm-up (allocator, oneDNN primitives)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"method": method, "median_s": statistics.median(times), "times_s": times,
            "peak_rss_mib": _rss_mib(), "rss_before_mib": before,
            "step_peak_mib": _rss_mib() - before}


def _run(method: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", method]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    row: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    _log(f"{method:12s} {row['median_s']:7.2f} s/step   peak RSS {row['peak_rss_mib']:6.0f} MiB"
         f"   step peak {row['step_peak_mib']:6.0f} MiB   load {os.getloadavg()[0]:.2f}")
    return row


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit(name: str, value: float, unit: str, **extra: Any) -> None:
    record: dict[str, Any] = {"name": name, "value": round(value, 3), "unit": unit}
    if "baseline_value" in extra and value > 0:
        # ratio > 1 means we are better: baseline / ours for times and memory
        extra["ratio"] = round(extra["baseline_value"] / value, 3)
    print(json.dumps({**record, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the method list this many times, rotating the order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--k", type=int, default=4, help="PC-DARTS partial-channel K")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args)))
        return
    methods = args.methods.split(",")
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {m: [] for m in methods}
    peaks: dict[str, float] = {}
    for rep in range(args.repeat):
        shift = rep % len(methods)
        for method in methods[shift:] + methods[:shift]:
            row = _run(method)
            times[method] += row["times_s"]
            peaks[method] = max(peaks.get(method, 0.0), row["step_peak_mib"])
    medians = {m: statistics.median(t) for m, t in times.items()}
    settings = {"threads": args.threads, "channels": args.channels, "layers": args.layers,
                "batch": args.batch, "size": args.size, "steps": len(times[methods[0]]),
                "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    for method in methods:
        extra: dict[str, Any] = {}
        if method != "plain" and "plain" in medians:
            extra = {"baseline": "plain (same invocation)", "baseline_value": medians["plain"]}
        _emit(f"darts_step.{method}", medians[method], "s/step", **extra, **settings)
        if method in PEERS:
            label, figure = PEERS[method]
            _emit(f"darts_step_vs_peer.{method}", medians[method], "s/step", baseline=label,
                  baseline_value=figure, **settings)
        if method == "darts":
            _emit("darts_step_vs_nni.darts", medians[method], "s/step",
                  baseline="NNI 3.0 DARTS (peers/README.md)", baseline_value=NNI_DARTS_S,
                  **settings)
        mem: dict[str, Any] = {}
        if method != "darts" and "darts" in peaks:
            mem = {"baseline": "darts", "baseline_value": peaks["darts"]}
        _emit(f"darts_step_peak.{method}", peaks[method], "MiB", **mem, **settings)


if __name__ == "__main__":
    main()
