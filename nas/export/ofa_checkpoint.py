"""A run's whole supernet in Once-for-All's checkpoint format: `nas export --format ofa`.

OFA saves its elastic networks as `{"state_dict": net.state_dict()}` under its own module
names; `ofa.model_zoo.ofa_net(net_id)` and OFA's training and search scripts load exactly that.
`export_ofa_checkpoint` writes the run's supernet (trained here or imported) that way, named
as OFA names its files (`ofa_mbv3_d234_e346_k357_w1.0`, ...), with `ofa_net.json` beside it
(the OFA class and its constructor arguments, the source of the weights) and `README.md`.

The check is a round trip: the written file, read back as an import reads OFA's files, must
give the run's supernet tensor for tensor, bit for bit. Parity of logits with OFA's own
networks is tested where the `ofa` package is installed (tests/nas/test_ofa_reference.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nas.artifacts import (
    RunDir,
    atomic_save_with,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    now_iso,
)
from nas.errors import ConfigError, NasError
from nas.supernet import Supernet
from nas.supernet.ofa_import import (
    WIDTH_KEYS,
    describe_source,
    ofa_supernet,
    read_ofa_state,
    supernet_to_ofa,
)

STAGE = "export-ofa"
FOLDER = "ofa"  # runs/NAME/export/ofa/ by default
META_FILE = "ofa_net.json"
README_FILE = "README.md"
FORMAT = "nas-ofa-export/1"
OFA_MODULE = "ofa.imagenet_classification.elastic_nn.networks"


class RoundTripError(NasError):
    """The written OFA file does not read back as the run's supernet."""


@dataclass(frozen=True)
class OFACheckpointExport:
    """What `export_ofa_checkpoint` wrote (`meta` is also `ofa_net.json`)."""

    out_dir: Path
    file: Path
    meta: dict[str, Any]


def ofa_net_id(ofa_class: str, kwargs: Mapping[str, Any]) -> str:
    """OFA's name for the network `OFA_CLASS(**kwargs)` (`ofa.model_zoo` names its files so):
    `ofa_mbv3_d234_e346_k357_w1.0`, `ofa_resnet50_d0-1-2_e0.2-0.25-0.35_w0.65-0.8-1.0`."""
    def ints(key: str, sep: str) -> str:
        return sep.join(str(int(v)) for v in kwargs[key])

    def floats(values: Sequence[float]) -> str:
        return "-".join(str(round(float(v), 6)) for v in values)  # 1.0, 0.65, 0.1625

    if ofa_class == "OFAMobileNetV3":
        return (f"ofa_mbv3_d{ints('depth_list', '')}_e{ints('expand_ratio_list', '')}"
                f"_k{ints('ks_list', '')}_w{floats([kwargs['width_mult']])}")
    return (f"ofa_resnet50_d{ints('depth_list', '-')}_e{floats(kwargs['expand_ratio_list'])}"
            f"_w{floats(kwargs['width_mult_list'])}")


def check_round_trip(original: Mapping[str, Tensor], read_back: Mapping[str, Tensor]) -> int:
    """How many tensors were compared; raises `RoundTripError` naming the first that differs."""
    missing = sorted(set(original) ^ set(read_back))
    if missing:
        raise RoundTripError(
            f"OFA export: tensor '{missing[0]}' is in only one of the run's supernet and the "
            "file read back; the space's OFA key map is incomplete (a bug: please report it)"
        )
    for key, tensor in original.items():
        other = read_back[key]
        if other.dtype != tensor.dtype or not torch.equal(other, tensor):
            raise RoundTripError(
                f"OFA export: tensor '{key}' reads back different from the run's supernet "
                f"(dtype {other.dtype} vs {tensor.dtype}); the file was kept for inspection"
            )
    return len(original)


def export_ofa_checkpoint(
    run: RunDir, *, out_dir: Path | None = None, argv: Sequence[str] | None = None
) -> OFACheckpointExport:
    """Write `run`'s supernet as OFA's checkpoint into `out_dir` (default `export/ofa/`).

    Raises:
        ArtifactError: the run has no supernet.
        ConfigError: the supernet has no OFA counterpart (a space other than ofa-mbv3 /
            ofa-resnet50, small-input strides, not 3 image channels).
        RoundTripError: the written file does not read back as the run's weights.
    """
    from nas.supernet.weights import load_weights, read_weights_metadata, weights_path

    run.require()
    weights = weights_path(run)
    stored = read_weights_metadata(weights)
    net = load_weights(weights, stored, device="cpu")
    if net.space.name not in ("ofa-mbv3", "ofa-resnet50"):
        raise ConfigError(
            f"--format ofa: run '{run.name}' has a '{net.space.name}' supernet; OFA's format "
            "holds ofa-mbv3 and ofa-resnet50 supernets only (export its subnets instead)"
        )
    state, kwargs = supernet_to_ofa(net)
    target = out_dir or run.exports_dir / FOLDER
    ofa_class = _ofa_class(net.space.name)
    net_id = ofa_net_id(ofa_class, kwargs)
    path = target / net_id
    run.begin_stage(STAGE, config={"out_dir": str(target)}, device="cpu",
                    argv=list(argv) if argv else None)
    try:
        meta = _write(path, state, net, ofa_class, kwargs, stored, run)
    except BaseException:
        run.end_stage(STAGE, status="failed")
        raise
    run.end_stage(STAGE, summary={"out_dir": str(target), "file": net_id,
                                  "sha256": meta["sha256"], "tensors": meta["tensors"]})
    return OFACheckpointExport(target, path, meta)


def _ofa_class(space: str) -> str:
    from nas.supernet.ofa_import import ofa_network

    return ofa_network(space).ofa_class


def _write(
    path: Path, state: dict[str, Tensor], net: Supernet, ofa_class: str, kwargs: dict[str, Any],
    stored: Mapping[str, Any], run: RunDir,
) -> dict[str, Any]:
    """Save, read back through the import path, compare, then write the sidecar files."""
    atomic_save_with(path, lambda tmp: torch.save({"state_dict": state}, tmp))
    spec = net.space.spec()
    width = {k: spec["kwargs"][k] for k in WIDTH_KEYS if k in spec["kwargs"]}
    back = ofa_supernet(read_ofa_state(path), space=net.space.name,
                        width_mult=next(iter(width.values()), None), source=str(path))
    compared = check_round_trip(net.state_dict(), back.state_dict())
    imported = (stored.get("train_config") or {}).get("imported_from")
    meta = {
        "format": FORMAT, "created": now_iso(), "file": path.name, "net_id": path.name,
        "sha256": file_sha256(path), "bytes": path.stat().st_size, "tensors": len(state),
        "ofa_class": ofa_class, "ofa_module": OFA_MODULE, "ofa_kwargs": kwargs,
        "space": spec, "run": run.name,
        "weights_from": describe_source(imported) if imported else f"trained in run {run.name}",
        "round_trip": {"tensors": compared, "max_abs_diff": 0.0, "passed": True},
    }
    atomic_write_json(path.parent / META_FILE, meta)
    atomic_write_text(path.parent / README_FILE, render_readme(meta))
    return meta


def render_readme(meta: Mapping[str, Any]) -> str:
    """How to load the file with OFA's own code, and where its weights came from."""
    kwargs = ", ".join(f"{key}={value!r}" for key, value in meta["ofa_kwargs"].items())
    return "\n".join([
        f"# `{meta['file']}`: a supernet in Once-for-All's format", "",
        f"`{meta['ofa_class']}` weights as OFA saves them (`{{\"state_dict\": ...}}`, OFA's "
        f"key names), {meta['tensors']} tensors, sha256 `{meta['sha256']}`.", "",
        f"- weights: {meta['weights_from']}",
        f"- space: `{meta['space'].get('name')}` {meta['space'].get('kwargs')}",
        f"- round trip (file read back by `nas import-supernet ofa`): "
        f"{meta['round_trip']['tensors']} tensors bit for bit equal", "",
        "Load it with OFA (`pip install ofa`):", "", "```python", "import torch",
        f"from {meta['ofa_module']} import {meta['ofa_class']}",
        f"net = {meta['ofa_class']}({kwargs})",
        f"net.load_state_dict(torch.load({meta['file']!r}, map_location='cpu')['state_dict'])",
        "```", "",
        "OFA's `ofa.model_zoo.ofa_net(net_id, pretrained=True)` reads `.torch/ofa_nets/<net_id>` "
        "from the working directory before downloading: for one of OFA's published networks "
        "(same class, widths and 1000 classes) copy the file there under this name.", "",
        "Back into `nas`: `nas import-supernet ofa FILE --run NAME`.", "",
    ])


__all__ = [
    "FOLDER",
    "META_FILE",
    "STAGE",
    "OFACheckpointExport",
    "RoundTripError",
    "check_round_trip",
    "export_ofa_checkpoint",
    "ofa_net_id",
]
