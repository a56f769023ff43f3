"""Readers of an export folder: `load_exported(DIR)` rebuilds the static network from
safetensors + arch.json; `SavedModel` runs any written format as loaded back from disk.

Nothing is unpickled: the network is rebuilt from the recorded space spec and arch, and the
weights come from safetensors. The build recipe is recorded in `arch.json` under `builder`:

- `"extract_subnet"` (supernet spaces): `space_from_spec(spec).build_supernet()
  .extract_subnet(arch)`, whose structure is exactly what was exported;
- `"build_network"` (stand-alone networks such as a DARTS evaluation network):
  `space.build_network(arch, **builder_kwargs)`.

`SavedModel` is what the parity check compares: the file a user deploys, not the module still
in memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.artifact_kinds import ARCH_JSON, EXPORT_WEIGHTS
from nas.artifacts import read_json
from nas.errors import ArtifactError, ConfigError, IncompatibleArtifactError
from nas.export.deploy import STORED, DeployForm, deployable
from nas.export.formats import (
    ARCH_FILE,
    FORMATS,
    INCOMPLETE_FILE,
    INPUT_NAME,
    ONNX_FILE,
    OUTPUT_NAME,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
)
from nas.readers import load_tensors


def build_static(meta: dict[str, Any]) -> nn.Module:
    """The exported network's structure (untrained weights) from an `arch.json` mapping."""
    from search_spaces import space_from_spec

    space = space_from_spec(meta["space"], source="arch.json")
    arch = space.normalize(meta["arch"])
    builder = meta.get("builder", "extract_subnet")
    if builder == "extract_subnet":
        return space.build_supernet().extract_subnet(arch)
    if builder == "build_network" and hasattr(space, "build_network"):
        network: nn.Module = space.build_network(arch, **meta.get("builder_kwargs", {}))
        return network
    raise IncompatibleArtifactError(
        f"arch.json: builder '{builder}' is not supported by space '{meta['space'].get('name')}' "
        "in this nas version (expected extract_subnet or build_network); upgrade nas"
    )


def recorded_form(meta: dict[str, Any], fmt: str = "pytorch") -> DeployForm:
    """The inference form the export chose for `fmt` (recorded in `arch.json` under `deploy`);
    the stored form for exports made before nas recorded one."""
    record = (meta.get("deploy") or {}).get(fmt)
    return DeployForm.from_dict(record) if isinstance(record, dict) else STORED


def load_exported(
    directory: str | Path,
    *,
    device: str = "cpu",
    fuse_bn: bool | None = None,
    channels_last: bool | None = None,
) -> nn.Module:
    """Load the `pytorch` format of an export folder as a plain `nn.Module` in eval mode.

    By default the network comes in the form the export checked and chose as the fastest that
    still matches the supernet within the parity limit (recorded in `arch.json` under
    `deploy.pytorch` and in the model card): BN folded into the convs, identity modules dropped
    and channels-last layout. `fuse_bn=False` gives the network as stored, with its batch
    norms, which is what fine-tuning needs.

    Args:
        directory: a folder written by `nas export` (holding `arch.json` and
            `weights.safetensors`).
        device: where to put the module.
        fuse_bn: fold BN into the convs (inference only); None: as recorded at export.
        channels_last: NHWC weights and inputs; None: as recorded when `fuse_bn` is None,
            else the same as `fuse_bn` (the inference form goes together).

    Raises:
        ArtifactError: files are missing (export with `--format pytorch`).
        IncompatibleArtifactError: the weights do not fit the recorded architecture.
    """
    folder = Path(directory)
    meta = read_arch_json(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(
            f"{weights} does not exist; this export has no pytorch format "
            "(re-run `nas export ... --format pytorch`)"
        )
    model = build_static(meta)
    try:
        model.load_state_dict(load_tensors(weights, EXPORT_WEIGHTS), strict=True)
    except RuntimeError as exc:
        detail = (str(exc).splitlines()[1:2] or [str(exc)])[0].strip()
        raise IncompatibleArtifactError(
            f"{weights}: weights do not fit the architecture in arch.json ({detail})"
        ) from None
    recorded = recorded_form(meta)
    fold = recorded.fuse_bn if fuse_bn is None else fuse_bn
    if channels_last is None:
        channels_last = recorded.channels_last if fuse_bn is None else fold
    form = DeployForm(fuse_bn=fold, channels_last=channels_last)
    if form != STORED:
        model = deployable(model, form)
    return model.to(device).eval()


def read_arch_json(out_dir: Path) -> dict[str, Any]:
    """The export's `arch.json` (raises `ArtifactError` when missing or malformed)."""
    data: dict[str, Any] = read_json(out_dir / ARCH_FILE, ARCH_JSON)
    return data


def require_complete(out_dir: Path) -> None:
    """`ArtifactError` when `out_dir` is an export that was killed or failed while writing."""
    marker = out_dir / INCOMPLETE_FILE
    if marker.is_file():
        raise ArtifactError(f"{out_dir}: the export is incomplete ({marker.name} is there: it "
                            "was killed or failed while writing); run the same `nas export` "
                            "again")


class SavedModel:
    """One saved format loaded from disk, callable on a float32 CPU batch.

    Args:
        fmt: one of `FORMATS`.
        out_dir: the export folder.
        threads: intra-op threads for onnxruntime (torch uses its global setting).
        form: (pytorch only) how `load_exported` prepares the network; None: as recorded.
        stored: (pytorch only) the network already loaded from this folder as stored
            (`load_exported(out_dir, fuse_bn=False)`), to prepare as `form` without reading
            and rebuilding it again.
    """

    def __init__(
        self, fmt: str, out_dir: Path, *, threads: int = 1, form: DeployForm | None = None,
        stored: nn.Module | None = None,
    ) -> None:
        self.fmt = fmt
        self._session: Any = None
        self._module: Any = None
        if fmt == "pytorch":
            if form is None:
                self._module = load_exported(out_dir)
            elif stored is not None:
                self._module = deployable(stored, form)
            else:
                self._module = load_exported(
                    out_dir, fuse_bn=form.fuse_bn, channels_last=form.channels_last
                )
        elif fmt == "torchscript":
            path = str(out_dir / TORCHSCRIPT_FILE)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=DeprecationWarning)
                self._module = torch.jit.load(path, map_location="cpu")  # type: ignore[no-untyped-call]
            self._module.eval()
        elif fmt == "onnx":
            self._session = _onnx_session(out_dir / ONNX_FILE, threads=threads)
        else:
            raise ConfigError(f"unknown format '{fmt}' (expected one of {', '.join(FORMATS)})")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._session is not None:
            (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: x.cpu().numpy()})
            return torch.from_numpy(out)
        with torch.no_grad():
            result: torch.Tensor = self._module(x.cpu())
        return result


def _onnx_session(path: Path, *, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
