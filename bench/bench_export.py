"""Batch-1 CPU latency of an exported subnet against the same subnet run through the supernet
and against the same architecture built directly; TorchScript and ONNX Runtime latency of the
exported files.

    python bench/bench_export.py [--space ofa-mbv3] [--resolution 224] [--classes 1000]
        [--threads 1] [--seed 0]

Each line: {"name", "value" (ms), "unit", "baseline", "baseline_value", "ratio"} with ratio > 1
meaning the exported model is faster than the baseline. Uses the profiler's measurement method
(`nas.profile.measure`: warm-up, ~250 ms of timed calls, median). Diagnostics go to stderr.
Timings on a shared machine are noisy; run it alone.
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
from nas.profile.measure import MeasureSettings, Timing, measure  # noqa: E402
from search_spaces import create_space  # noqa: E402


def timed(fn: Any, x: torch.Tensor, settings: MeasureSettings) -> Timing:
    def runner(n: int) -> list[float]:
        import time

        out = []
        with torch.inference_mode():
            for _ in range(n):
                start = time.perf_counter()
                fn(x)
                out.append((time.perf_counter() - start) * 1e3)
        return out

    return measure(runner, settings)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="ofa-mbv3")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = create_space(args.space, num_classes=args.classes, resolutions=[args.resolution],
                         image_size=args.resolution)
    supernet = space.build_supernet().eval()
    arch = space.sample(np.random.default_rng(args.seed))
    supernet.set_active(arch)
    log(f"{args.space} subnet {arch_id(arch)} at {args.resolution}px, {args.threads} thread(s): "
        f"{space.complexity(arch)}")
    side = supernet.input_resolution(arch) or args.resolution
    x = torch.randn(1, int(getattr(space, "in_channels", 3)), side, side,
                    generator=torch.Generator().manual_seed(0))
    settings = MeasureSettings()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        static = supernet.extract_subnet(arch).eval()
        fmt.save_pytorch(static, out)
        atomic_write_json(out / fmt.ARCH_FILE, {"space": space.spec(), "arch": arch,
                                                "builder": "extract_subnet"})
        fmt.save_torchscript(static, x, out)
        fmt.save_onnx(static, x, out)
        exported = load_exported(out)
        results = {
            "exported": timed(exported, x, settings),
            "supernet": timed(supernet, x, settings),
            "torchscript": timed(fmt.SavedModel("torchscript", out), x, settings),
            "onnxruntime": timed(fmt.SavedModel("onnx", out, threads=args.threads), x, settings),
        }
        direct = direct_build(space, arch)
        if direct is not None:
            results["direct"] = timed(direct.eval(), x, settings)
    base = f"{args.space}.r{args.resolution}.b1.t{args.threads}"
    ours = results["exported"].median_ms
    emit(f"export.{base}.exported_vs_supernet", ours, "ms",
         baseline="same subnet through the supernet (set_active + forward)",
         baseline_value=results["supernet"].median_ms, higher_is_better=False)
    if "direct" in results:
        emit(f"export.{base}.exported_vs_direct_build", ours, "ms",
             baseline="same architecture built directly (fresh static modules)",
             baseline_value=results["direct"].median_ms, higher_is_better=False)
    emit(f"export.{base}.torchscript", results["torchscript"].median_ms, "ms",
         baseline="exported model, torch eager", baseline_value=ours, higher_is_better=False)
    emit(f"export.{base}.onnxruntime", results["onnxruntime"].median_ms, "ms",
         baseline="exported model, torch eager", baseline_value=ours, higher_is_better=False)
    for name, timing in results.items():
        log(f"  {name:12} median {timing.median_ms:.3f} ms (IQR {timing.q1_ms:.3f}-"
            f"{timing.q3_ms:.3f}, n={timing.n})")


if __name__ == "__main__":
    main()
