"""Writers and readers of the three export formats.

- `pytorch`: `weights.safetensors` (the static network's state dict, no pickle) next to
  `arch.json` (arch + space spec), rebuilt by `nas.load_exported`.
- `torchscript`: `model.pt`, a traced (and, by default, frozen) module that `torch.jit.load`
  runs without nas installed.
- `onnx`: `model.onnx`, runnable by onnxruntime without torch or nas.

The files hold the network in an inference form (`nas.export.deploy`: BN folded, NHWC for
TorchScript) when that form meets the parity limits; the safetensors weights are always the
trainable network as extracted, and `load_exported` applies the form on load.

Every writer goes through `nas.artifacts.atomic_save_with`, so a killed export never leaves a
half-written model file. `run_saved` reads a format back *from disk* and runs it, which is what
the parity check compares: the file a user deploys, not the module still in memory.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.artifacts import atomic_save_with
from nas.errors import ConfigError, closest_hint
from nas.export.deploy import STORED, DeployForm

logger = logging.getLogger(__name__)

FORMATS = ("pytorch", "torchscript", "onnx")
WEIGHTS_FILE = "weights.safetensors"
ARCH_FILE = "arch.json"
TORCHSCRIPT_FILE = "model.pt"
ONNX_FILE = "model.onnx"
FILES = {"pytorch": WEIGHTS_FILE, "torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}
# 17 is the newest opset whose operators onnxruntime >= 1.14 and the TorchScript-based
# exporter both cover completely (hardswish, hardsigmoid, adaptive pooling as GlobalAveragePool)
ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """`"pytorch,onnx"` or a sequence -> validated tuple in canonical order, no duplicates."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    cleaned = [name.strip().lower() for name in names if name.strip()]
    if not cleaned:
        raise ConfigError(f"--format: expected one or more of {', '.join(FORMATS)}, got nothing")
    for name in cleaned:
        if name not in FORMATS:
            raise ConfigError(
                f"--format: unknown format '{name}'{closest_hint(name, FORMATS)} "
                f"(expected a comma-separated list of {', '.join(FORMATS)})"
            )
    return tuple(name for name in FORMATS if name in cleaned)


def save_pytorch(model: nn.Module, out_dir: Path) -> Path:
    """Write the model's state dict as safetensors (contiguous CPU copies, no shared storage)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    path = out_dir / WEIGHTS_FILE
    metadata = {"format": "nas-export/1"}
    atomic_save_with(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def save_torchscript(
    model: nn.Module, example: torch.Tensor, out_dir: Path, *, form: DeployForm = STORED
) -> Path:
    """Trace `model`, prepared as `form`, on `example` (CPU) and save it with `torch.jit.save`.

    Tracing, not scripting: a static subnet has no data-dependent control flow, and tracing
    accepts any module a space builds, while scripting needs annotated Python. torch 2.13 marks
    TorchScript deprecated (in favour of torch.export) but still writes and reads it; its
    deprecation warnings are silenced because the format is what users asked for. A frozen
    module (`form.freeze`) is still an ordinary TorchScript file for `torch.jit.load`.
    """
    from nas.export.deploy import trace

    path = out_dir / TORCHSCRIPT_FILE
    traced = trace(model.cpu().eval(), example, form)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        atomic_save_with(path, lambda tmp: torch.jit.save(traced, tmp))
    return path


def save_onnx(
    model: nn.Module, example: torch.Tensor, out_dir: Path, *, opset: int = ONNX_OPSET,
    form: DeployForm = STORED,
) -> Path:
    """Export `model`, prepared as `form`, to ONNX with a dynamic batch axis.

    Uses the TorchScript-based exporter (`dynamo=False`): the torch.export-based default of
    torch >= 2.9 needs the `onnxscript` package, which nas does not depend on.
    """
    from nas.export.deploy import deployable

    model = deployable(model.cpu(), form)
    path = out_dir / ONNX_FILE

    def write(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                model,
                (example.cpu(),),
                tmp,
                opset_version=opset,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )

    atomic_save_with(path, write)
    return path


def read_arch_json(out_dir: Path) -> dict[str, Any]:
    """The export's `arch.json` (raises `ArtifactError` when missing or malformed)."""
    from nas.artifacts import read_json
    from nas.errors import ArtifactError

    data = read_json(out_dir / ARCH_FILE)
    if not isinstance(data, dict) or "arch" not in data or "space" not in data:
        raise ArtifactError(
            f"{out_dir / ARCH_FILE}: expected an object with 'arch' and 'space', "
            f"got {json.dumps(data)[:80]}; re-export with `nas export`"
        )
    return data


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
            from nas.export.load import load_exported

            if form is None:
                self._module = load_exported(out_dir)
            elif stored is not None:
                from nas.export.deploy import deployable

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
