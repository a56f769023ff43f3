"""Sandwich-step throughput and peak memory: our ofa-mbv3 supernet vs Once-for-All's own.

One sandwich step = the training step of `nas train-supernet --method sandwich`: the largest
subnet on the labels, then the smallest and 2 random subnets with in-place distillation from
the largest, one SGD (momentum, Nesterov) step. Throughput counts distinct images per second
(batch / step time), the peers README's convention. Both sides train the same space (OFA's
MobileNetV3, width 1.0, 10 classes, OFA's strides: no small-input stem) on random data.

Every (implementation, resolution) runs in a fresh subprocess, one after the other, so that
    - peak memory is that process's own: `ru_maxrss` (peak resident set, what the OS had to
      give) minus the resident set after the network was built and before the first step.
      That difference is what training adds: activations kept for backward, gradients,
      momentum buffers and allocator caches. tracemalloc would miss torch's C++ allocations
      and the torch profiler's memory view is per-operator, not a process peak;
    - the two implementations never compete for the 2 cores.
The reference runs in the peers venv (NAS_PEERS_PYTHON, see ../shared/peers/README.md).

    python bench/bench_sandwich.py [--res 32 64 128] [--batch 32] [--threads 2] [--steps 3]

Besides images/s (wall clock) it reports images per CPU-second, which a busy machine distorts
far less (use --threads 1 there: spinning worker threads of a descheduled process inflate
both figures at 2 threads).

Prints JSON lines {name, value, unit, baseline, baseline_value, ratio} (ratio > 1: we win).
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = Path(os.environ.get("NAS_PEERS_PYTHON", "python3"))  # the peers venv's python
BASELINE = "ofa 0.1.0.post202307202001 (PyPI)"
CEILING_GFLOPS_PER_THREAD = 90.0  # ~180 GFLOP/s float32 matmul on this machine's 2 cores
MACS: list[int] = []  # per-image MACs of each of our sandwich steps (forward, all 4 subnets)


# the reference packages beside the project (../shared/peers) unless NAS_PEERS_DIR says
PEERS_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "peers")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _ours(res: int) -> tuple[Any, Any]:
    """Our supernet and a step function (the training loop's own `train_step`)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE.parent))
    from nas.train.progressive import param_groups
    from nas.train.sandwich import StepOptions, sandwich_subnets, train_step
    from search_spaces import create_space

    space = create_space("ofa-mbv3", num_classes=10, image_size=res, resolutions=[res],
                         small_input=False)
    net = space.build_supernet().train()
    optimizer = torch.optim.SGD(param_groups(net, 3e-5), lr=0.01, momentum=0.9, nesterov=True)
    options = StepOptions(label_smoothing=0.1, distill_weight=1.0)
    rng = np.random.default_rng(0)

    def step(x: Any, y: Any) -> None:
        spec = sandwich_subnets(space.largest(), space.smallest(),
                                [space.sample(rng), space.sample(rng)])
        MACS.append(sum(space.complexity(arch)["macs"] for _, arch in spec.subnets))
        optimizer.zero_grad(set_to_none=True)
        train_step(net, net, x, y, spec, options)
        optimizer.step()

    return net, step


def _reference(res: int) -> tuple[Any, Any]:
    """OFA's OFAMobileNetV3 and the same sandwich step written with its API."""
    import random

    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.environ.get("NAS_PEERS_DIR", PEERS_DIR))
    import peer_compat

    peer_compat.apply()
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    net = OFAMobileNetV3(n_classes=10, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                         depth_list=[2, 3, 4]).train()
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 3e-5},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=0.01, momentum=0.9, nesterov=True)
    random.seed(0)  # OFA samples subnets from the global `random` module

    def step(x: Any, y: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        net.set_max_net()
        logits = net(x)
        F.cross_entropy(logits, y, label_smoothing=0.1).backward()
        target = F.softmax(logits.detach(), dim=1)
        for which in ("smallest", "random", "random"):
            if which == "smallest":
                net.set_active_subnet(ks=3, e=3, d=2)
            else:
                net.sample_active_subnet()
            out = net(x)
            kd = -(target * F.log_softmax(out, dim=1)).sum(1).mean()
            (F.cross_entropy(out, y, label_smoothing=0.1) + kd).backward()
        optimizer.step()

    return net, step


def worker(impl: str, res: int, batch: int, steps: int, threads: int) -> dict[str, Any]:
    """Measure in this process; returns {images_per_s, peak_mb, train_mb}."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, step = _ours(res) if impl == "ours" else _reference(res)
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, 10, (batch,))
    built_mb = _rss_mb()
    step(x, y)  # warm-up: allocator, oneDNN primitive caches, momentum buffers
    times, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(x, y)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = _peak_rss_mb()
    result = {"images_per_s": batch / statistics.median(times), "peak_mb": peak,
              "train_mb": peak - built_mb, "step_s": statistics.median(times),
              "images_per_cpu_s": batch / statistics.median(cpu)}
    if MACS:
        # training FLOPs ~ 3x forward (backward computes input and weight gradients), 2 per MAC
        flops = 6 * batch * statistics.mean(MACS[1:])
        result["gflops_per_s"] = flops / statistics.median(times) / 1e9
        result["gflops_per_cpu_s"] = flops / statistics.median(cpu) / 1e9
        # share of the ceiling of the cores actually used (CPU time: robust to other load)
        result["ceiling_share"] = result["gflops_per_cpu_s"] / CEILING_GFLOPS_PER_THREAD
    return result


def _spawn(impl: str, args: argparse.Namespace, res: int) -> dict[str, Any]:
    python = sys.executable if impl == "ours" else str(PEERS_PYTHON)
    command = [python, str(Path(__file__).resolve()), "--worker", impl, "--res", str(res),
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _emit(name: str, value: float, unit: str, base: float, higher_is_better: bool,
          **extra: Any) -> None:
    ratio = value / base if higher_is_better else base / value
    record = {"name": name, "value": round(value, 2), "unit": unit, "baseline": BASELINE,
              "baseline_value": round(base, 2), "ratio": round(ratio, 3), **extra}
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=["ours", "ofa"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.res[0], args.batch, args.steps, args.threads)))
        return
    if not PEERS_PYTHON.is_file():
        sys.exit(f"reference venv missing: {PEERS_PYTHON} (see ../shared/peers/README.md)")
    for res in args.res:
        ours, ref = _spawn("ours", args, res), _spawn("ofa", args, res)
        print(f"res {res}: ours {ours} / ofa {ref}", file=sys.stderr, flush=True)
        extra = {"res": res, "batch": args.batch, "threads": args.threads}
        _emit(f"sandwich_step.res{res}.throughput", ours["images_per_s"], "images/s",
              ref["images_per_s"], True, **extra)
        print(json.dumps({"name": f"sandwich_step.res{res}.gflops_per_cpu_second",
                          "value": round(ours["gflops_per_cpu_s"], 2), "unit": "GFLOP/cpu-s",
                          "wall_gflops_per_s": round(ours["gflops_per_s"], 2),
                          "ceiling_share": round(ours["ceiling_share"], 3), **extra}), flush=True)
        # CPU seconds are much less sensitive to other processes on a shared machine (at 1
        # thread they approximate the wall time of an idle core)
        _emit(f"sandwich_step.res{res}.throughput_per_cpu_second", ours["images_per_cpu_s"],
              "images/cpu-s", ref["images_per_cpu_s"], True, **extra)
        _emit(f"sandwich_step.res{res}.train_memory", ours["train_mb"], "MiB",
              ref["train_mb"], False, peak_rss_mib=round(ours["peak_mb"], 1),
              baseline_peak_rss_mib=round(ref["peak_mb"], 1), **extra)


if __name__ == "__main__":
    main()
