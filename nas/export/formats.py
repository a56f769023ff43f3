"""Writers of the three export formats, and the names of an export folder's files.

- `pytorch`: `weights.safetensors` (the static network's state dict, no pickle) next to
  `arch.json` (arch + space spec), rebuilt by `nas.load_exported`.
- `torchscript`: `model.pt`, a traced (and, by default, frozen) module that `torch.jit.load`
  runs without nas installed.
- `onnx`: `model.onnx`, runnable by onnxruntime without torch or nas.

The files hold the network in an inference form (`nas.export.deploy`: BN folded, NHWC for
TorchScript) when that form meets the parity limits; the safetensors weights are always the
trainable network as extracted, and `load_exported` applies the form on load.

Every writer goes through `nas.artifacts.atomic_save_with`, so a killed export never leaves a
half-written model file. The readers are in `nas.export.load`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from nas.artifacts import atomic_save_with
from nas.errors import ConfigError, closest_hint
from nas.export.deploy import STORED, DeployForm

logger = logging.getLogger(__name__)

FORMATS = ("pytorch", "torchscript", "onnx")
EXPORT_FORMAT = "nas-export/1"  # arch.json and the weights' metadata
WEIGHTS_FILE = "weights.safetensors"
ARCH_FILE = "arch.json"
TORCHSCRIPT_FILE = "model.pt"
ONNX_FILE = "model.onnx"
FILES = {"pytorch": WEIGHTS_FILE, "torchscript": TORCHSCRIPT_FILE, "onnx": ONNX_FILE}
# 17 is the newest opset whose operators onnxruntime >= 1.14 and the TorchScript-based
# exporter both cover completely (hardswish, hardsigmoid, adaptive pooling as GlobalAveragePool)
ONNX_OPSET = 17
INPUT_NAME = "input"
# present while an export is being written (or after it was killed): the folder is not usable
INCOMPLETE_FILE = "INCOMPLETE"
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
    metadata = {"format": EXPORT_FORMAT}
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
