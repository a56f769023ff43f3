"""`nas profile bundle`: ONNX models of sampled subnets and blocks plus a stand-alone runner.

The bundle folder holds `bundle.json` (space spec, batch size, and per model its file, input
shape and subnet config or block key), `subnets/*.onnx`, `blocks/*.onnx`, and `run_bundle.py`,
a copy of `nas/profile/bundle_runner.py` that needs only numpy and onnxruntime. Its results
file is the input of `nas profile import`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import Arch, arch_id
from nas.artifacts import atomic_write_bytes, atomic_write_json, now_iso
from nas.profile.devices import export_onnx
from nas.profile.sampling import stratified_sample
from predictors.features import key_universe
from search_spaces.base import SearchSpace

RUNNER = Path(__file__).with_name("bundle_runner.py")
RUNNER_NAME = "run_bundle.py"


def _subnet_shape(
    space: SearchSpace, supernet: Any, arch: dict[str, Any], batch: int
) -> list[int]:
    side = int(supernet.input_resolution(arch) or space.image_size)
    return [batch, int(space.in_channels), side, side]


def write_bundle(
    space: SearchSpace, supernet: Any, out: Path, *, samples: int, batch_size: int = 1,
    blocks: bool = True, seed: int = 0,
    on_item: Callable[[int, int], None] | None = None, archs: Sequence[Arch] | None = None,
) -> dict[str, Any]:
    """Export the models to time on a remote device; returns the bundle manifest.

    Args:
        space: the search space.
        supernet: its supernet (`extract_subnet`, and `block_module` for blocks).
        out: the bundle folder (created).
        samples: number of subnets (spread over MACs and resolutions like `nas profile`).
        batch_size: batch size of the exported models.
        blocks: include the per-block models (when the space and supernet provide them).
        seed: seeds the subnet sample.
        on_item: called with (done, total) after each exported model.
        archs: the subnets to export instead of a sample (e.g. `predictors.informative`).
    """
    chosen = [dict(a) for a in archs] if archs is not None else stratified_sample(
        space, samples, np.random.default_rng(seed))
    keys: list[str] = []
    if blocks and space.has_blocks:
        keys = key_universe(space, space.input_sizes())
    total, items = len(chosen) + len(keys), []
    for arch in chosen:
        shape = _subnet_shape(space, supernet, arch, batch_size)
        name = f"subnets/{arch_id(arch)}.onnx"
        atomic_write_bytes(out / name, export_onnx(supernet.extract_subnet(arch), tuple(shape)))
        items.append({"file": name, "arch": arch, "input_shape": shape})
        if on_item:
            on_item(len(items), total)
    for index, key in enumerate(keys):
        module, shape = supernet.block_module(key)
        full = [batch_size, *[int(s) for s in tuple(shape)[1:]]]
        name = f"blocks/{index:05d}.onnx"
        atomic_write_bytes(out / name, export_onnx(module, tuple(full)))
        items.append({"file": name, "block": key, "input_shape": full})
        if on_item:
            on_item(len(items), total)
    manifest = {"space": space.spec(), "batch_size": batch_size, "created": now_iso(),
                "n_subnets": len(chosen), "n_blocks": len(keys), "items": items}
    atomic_write_json(out / "bundle.json", manifest)
    shutil.copyfile(RUNNER, out / RUNNER_NAME)
    return manifest
