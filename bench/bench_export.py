"""Batch-1 CPU latency of an exported subnet against the same subnet run through the supernet
and against the same architecture built directly; TorchScript and ONNX Runtime latency of the
exported files.

    python bench/bench_export.py [--space ofa-mbv3] [--resolutions 224,32] [--classes 1000]
        [--threads 1] [--rounds 7] [--seed 0]

Each line: {"name", "value" (ms), "unit", "baseline", "baseline_value", "ratio"} with ratio > 1
meaning the exported model is faster than the baseline, plus `best_round_ms`. The variants are
timed in interleaved rounds (see `interleaved`), so load changes hit all of them alike.
Diagnostics go to stderr. Timings on a shared machine are noisy; run it alone. At 32 px with
10 classes (digits/CIFAR-sized) per-layer overhead dominates, which is where slicing costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log  # noqa: E402

from nas.arch import arch_id  # noqa: E402
from nas.artifacts import atomic_write_json  # noqa: E402
from nas.export import formats as fmt  # noqa: E402
from nas.export.load import load_exported  # noqa: E402
from nas.layers.fuse import fuse_conv_bn  # noqa: E402
from search_spaces import create_space  # noqa: E402


def interleaved(
    runners: dict[str, Any], x: torch.Tensor, *, rounds: int, calls: int, warmup: int
) -> dict[str, dict[str, float]]:
    """Median ms per call of each runner, timed in interleaved rounds.

    On a shared CPU, load changes over seconds; timing the variants one after another would
    hand whichever ran in a quiet moment an unfair edge. Each round times `calls` calls of
    every runner in turn; reported are the median over all calls and the best round median.
    """
    import statistics
    import time

    samples: dict[str, list[float]] = {name: [] for name in runners}
    round_medians: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for fn in runners.values():
            for _ in range(warmup):
                fn(x)
        for _ in range(rounds):
            for name, fn in runners.items():
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    fn(x)
                    times.append((time.perf_counter() - start) * 1e3)
                samples[name] += times
                round_medians[name].append(statistics.median(times))
    return {
        name: {"median_ms": statistics.median(samples[name]),
               "best_round_ms": min(round_medians[name]), "n": len(samples[name])}
        for name in runners
    }


def direct_build(space: Any, arch: dict[str, Any]) -> nn.Module | None:
    """The architecture built from its description, without a supernet (None if unknown)."""
    if hasattr(space, "build_network"):
        network: nn.Module = space.build_network(arch)
        return network
    if space.name == "ofa-mbv3":
        from search_spaces.ofa_mbv3.static import MobileNetV3Subnet, build_layer

        descs = space.layers(arch)
        blocks = [build_layer(d) for d in descs[1:-1]]
        return MobileNetV3Subnet(build_layer(descs[0]), blocks, build_layer(descs[-1]))
    return None


def bench(space_name: str, resolution: int, classes: int, threads: int, seed: int,
          rounds: int) -> None:
    space = create_space(space_name, num_classes=classes, resolutions=[resolution],
                         image_size=resolution)
    supernet = space.build_supernet().eval()
    arch = space.sample(np.random.default_rng(seed))
    supernet.set_active(arch)
    log(f"{space_name} subnet {arch_id(arch)} at {resolution}px, {threads} thread(s): "
        f"{space.complexity(arch)}")
    side = supernet.input_resolution(arch) or resolution
    x = torch.randn(1, int(getattr(space, "in_channels", 3)), side, side,
                    generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        static = supernet.extract_subnet(arch).eval()
        fmt.save_pytorch(static, out)
        atomic_write_json(out / fmt.ARCH_FILE, {"space": space.spec(), "arch": arch,
                                                "builder": "extract_subnet"})
        fmt.save_torchscript(static, x, out)
        fmt.save_onnx(static, x, out)
        runners: dict[str, Any] = {
            "exported": load_exported(out),
            "exported_bn_folded": fuse_conv_bn(load_exported(out)),
            "supernet": supernet,
            "torchscript": fmt.SavedModel("torchscript", out),
            "onnxruntime": fmt.SavedModel("onnx", out, threads=threads),
        }
        direct = direct_build(space, arch)
        if direct is not None:
            runners["direct"] = direct.eval()
        calls = 5 if resolution >= 128 else 20
        results = interleaved(runners, x, rounds=rounds, calls=calls, warmup=3)
    base = f"{space_name}.r{resolution}.b1.t{threads}"
    ours = results["exported"]["median_ms"]
    extra = {"best_round_ms": round(results["exported"]["best_round_ms"], 4)}
    emit(f"export.{base}.exported_vs_supernet", ours, "ms",
         baseline="same subnet through the supernet (set_active + forward)",
         baseline_value=results["supernet"]["median_ms"], higher_is_better=False, **extra)
    if "direct" in results:
        emit(f"export.{base}.exported_vs_direct_build", ours, "ms",
             baseline="same architecture built directly (fresh static modules)",
             baseline_value=results["direct"]["median_ms"], higher_is_better=False, **extra)
    folded = results["exported_bn_folded"]["median_ms"]
    emit(f"export.{base}.exported_bn_folded_vs_supernet", folded, "ms",
         baseline="same subnet through the supernet (set_active + forward)",
         baseline_value=results["supernet"]["median_ms"], higher_is_better=False)
    for name in ("torchscript", "onnxruntime"):
        emit(f"export.{base}.{name}", results[name]["median_ms"], "ms",
             baseline="exported model, torch eager", baseline_value=ours,
             higher_is_better=False, best_round_ms=round(results[name]["best_round_ms"], 4))
    for name, stats in results.items():
        log(f"  {name:12} median {stats['median_ms']:.3f} ms, best round "
            f"{stats['best_round_ms']:.3f} ms (n={stats['n']:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="ofa-mbv3")
    parser.add_argument("--resolutions", default="224,32",
                        help="Comma-separated input sides (224 with --classes, 32 with 10).")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for resolution in (int(r) for r in args.resolutions.split(",")):
        classes = args.classes if resolution >= 128 else 10
        bench(args.space, resolution, classes, args.threads, args.seed, args.rounds)


if __name__ == "__main__":
    main()
