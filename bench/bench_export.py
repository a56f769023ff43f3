"""Batch-1 CPU latency of an exported subnet, in every form the export can hold, against the
same subnet run through the supernet and the same architecture built directly.

    python bench/bench_export.py [--space ofa-mbv3] [--resolutions 224,32] [--classes 1000]
        [--threads 1] [--rounds 7] [--seed 0]

Variants (see COLUMNS): supernet, direct build, exported eager as stored (BN kept, NCHW), eager
NHWC, eager with BN folded + NHWC (what `nas.load_exported` returns when folding meets the
parity limit), TorchScript as exported (BN folded, NHWC, frozen) and its BN-kept fallback, and
ONNX Runtime. Each stdout line: {"name", "value" (ms), "unit", "baseline" (the supernet),
"baseline_value", "ratio"} with ratio > 1 meaning the variant is faster than the supernet, plus
`best_round_ms`; stderr gets a side-by-side table with speed-ups over the supernet and over the
stored eager model. All variants are timed in interleaved rounds of one invocation (see
`interleaved`), so load changes hit all of them alike. Timings on a shared machine are still
noisy: note `uptime` with the figures. At 32 px with 10 classes (digits/CIFAR-sized) per-layer
overhead dominates, which is where slicing and Python calls cost.
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
from nas.export.deploy import ONNX_FORMS, TORCHSCRIPT_FORMS  # noqa: E402
from nas.export.load import SavedModel, load_exported  # noqa: E402
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


# (runner name, what it is) in the order of the side-by-side table
COLUMNS = (
    ("supernet", "same subnet through the supernet (set_active + forward; NHWC)"),
    ("direct", "same architecture built directly (fresh static modules, NCHW)"),
    ("eager", "exported, torch eager as stored (BN kept, NCHW): load_exported(fuse_bn=False)"),
    ("eager_nhwc", "exported, eager, BN kept, NHWC (fallback default of load_exported)"),
    ("eager_folded", "exported, eager, BN folded, NHWC: load_exported() when folding passes"),
    ("torchscript", "model.pt as exported: BN folded, NHWC, frozen"),
    ("torchscript_bn", "model.pt fallback: BN kept, NHWC, frozen"),
    ("onnxruntime", "model.onnx as exported (BN folded) on onnxruntime, CPU provider"),
)


def _runners(space: Any, supernet: Any, arch: dict[str, Any], x: torch.Tensor, out: Path,
             threads: int) -> dict[str, Any]:
    """Every variant of COLUMNS, written to `out` and read back as a user would."""
    static = supernet.extract_subnet(arch).eval()
    fmt.save_pytorch(static, out)
    atomic_write_json(out / fmt.ARCH_FILE, {"space": space.spec(), "arch": arch,
                                            "builder": "extract_subnet"})
    folded_ts, kept_ts = TORCHSCRIPT_FORMS[0], TORCHSCRIPT_FORMS[1]
    runners: dict[str, Any] = {"supernet": supernet}
    direct = direct_build(space, arch)
    if direct is not None:
        runners["direct"] = direct.eval()
    runners["eager"] = load_exported(out, fuse_bn=False)
    runners["eager_nhwc"] = load_exported(out, fuse_bn=False, channels_last=True)
    runners["eager_folded"] = load_exported(out, fuse_bn=True)
    for name, form in (("torchscript_bn", kept_ts), ("torchscript", folded_ts)):
        fmt.save_torchscript(static, x, out, form=form)
        runners[name] = SavedModel("torchscript", out)
    fmt.save_onnx(static, x, out, form=ONNX_FORMS[0])
    runners["onnxruntime"] = SavedModel("onnx", out, threads=threads)
    return runners


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
        runners = _runners(space, supernet, arch, x, Path(tmp), threads)
        calls = 5 if resolution >= 128 else 20
        results = interleaved(runners, x, rounds=rounds, calls=calls, warmup=3)
    base = f"{space_name}.r{resolution}.b1.t{threads}"
    supernet_ms = results["supernet"]["median_ms"]
    eager_ms = results["eager"]["median_ms"]
    labels = dict(COLUMNS)
    for name, _ in COLUMNS:
        if name == "supernet" or name not in results:
            continue
        emit(f"export.{base}.{name}_vs_supernet", results[name]["median_ms"], "ms",
             baseline=labels["supernet"], baseline_value=supernet_ms, higher_is_better=False,
             best_round_ms=round(results[name]["best_round_ms"], 4), variant=labels[name])
    _table(f"{space_name} {resolution}px", results, supernet_ms, eager_ms)


def _table(title: str, results: dict[str, dict[str, float]], supernet_ms: float,
           eager_ms: float) -> None:
    """The variants side by side on stderr: ms and speed-ups over the supernet and over the
    exported eager model as stored."""
    log(f"  {title:22} {'median ms':>10} {'best round':>10} {'x supernet':>10} {'x eager':>8}")
    for name, _ in COLUMNS:
        if name in results:
            stats = results[name]
            log(f"  {name:22} {stats['median_ms']:10.3f} {stats['best_round_ms']:10.3f} "
                f"{supernet_ms / stats['median_ms']:10.2f} {eager_ms / stats['median_ms']:8.2f}")


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
