"""Exported files load where nas is not installed: TorchScript with torch only, ONNX with
onnxruntime only (torch blocked)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.export import ExportReport, load_exported
from nas.export.load import SavedModel
from nas.supernet import Supernet

# Runs with `python -I -S`: no user site, no cwd on sys.path and no .pth processing, so the
# editable install of nas is invisible; site-packages are added back by hand for torch/numpy.
PRELUDE = """
import json, sys
sys.path[:0] = {blocked!r}
sys.path += {site!r}
try:
    import nas
except ImportError:
    pass
else:
    raise SystemExit("nas is importable in the standalone interpreter: " + nas.__file__)
import numpy as np
x = np.load({x!r})
"""

TORCHSCRIPT = """
import torch
model = torch.jit.load({model!r})
with torch.no_grad():
    out = model(torch.from_numpy(x)).numpy()
print(json.dumps({{"shape": list(out.shape), "out": out.tolist()}}))
"""

ONNX = """
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch is importable: the test must block it")
import onnxruntime as ort
session = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"])
(out,) = session.run(["logits"], {{"input": x}})
print(json.dumps({{"shape": list(out.shape), "out": out.tolist()}}))
"""


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _run_standalone(tmp_path: Path, body: str, model: Path, blocked: list[str]) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((2, *_input_shape(model.parent)[1:]))
    x_path = tmp_path / "x.npy"
    np.save(x_path, x.astype(np.float32))
    code = PRELUDE.format(blocked=blocked, site=_site_dirs(), x=str(x_path)) + body.format(
        model=str(model)
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-500:]
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return np.asarray(record["out"], dtype=np.float32)


def _input_shape(export_dir: Path) -> list[int]:
    return list(json.loads((export_dir / "arch.json").read_text())["input"]["shape"])


def _expected(export_dir: Path, tmp_path: Path) -> np.ndarray:
    x = np.load(tmp_path / "x.npy")
    return SavedModel("pytorch", export_dir)(torch.from_numpy(x)).numpy()


@pytest.mark.slow  # a fresh interpreter importing torch takes seconds
@pytest.mark.parametrize(("space", "seed"), [("ofa-mbv3", 0), ("ofa-resnet50", 1)])
def test_torchscript_runs_with_torch_but_without_nas(
    space: str, seed: int, make_export: Callable[..., tuple[Supernet, ExportReport]],
    tmp_path: Path,
) -> None:
    """The frozen TorchScript file, in whichever form the export chose (ofa-mbv3 seed 0 keeps
    BN folded; ofa-resnet50 seed 1 misses the folding margin and keeps its BNs), runs where only
    torch is installed and matches the stored network."""
    export = make_export(space, seed)[1].out_dir
    form = json.loads((export / "arch.json").read_text())["deploy"]["torchscript"]
    assert form["freeze"] and form["channels_last"]
    out = _run_standalone(tmp_path, TORCHSCRIPT, export / "model.pt", blocked=[])
    x = torch.from_numpy(np.load(tmp_path / "x.npy"))
    with torch.no_grad():
        expected = load_exported(export, fuse_bn=False)(x).numpy()
    assert out.shape == expected.shape
    limit = 1e-5 * max(1.0, float(np.abs(expected).max()))
    assert np.abs(out - expected).max() <= limit


def test_onnx_runs_without_torch_or_nas(ofa_export: Path, tmp_path: Path) -> None:
    fake = tmp_path / "blocked" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch is blocked for this test')\n")
    out = _run_standalone(
        tmp_path, ONNX, ofa_export / "model.onnx", blocked=[str(tmp_path / "blocked")]
    )
    expected = _expected(ofa_export, tmp_path)
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= 1e-4


def test_the_standalone_interpreter_really_cannot_import_nas(tmp_path: Path) -> None:
    code = PRELUDE.format(blocked=[], site=_site_dirs(), x=str(tmp_path / "missing.npy"))
    code = code.split("import numpy")[0] + "print('ok')"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_guard_fails_when_nas_is_importable() -> None:
    # the guard is real: in the normal interpreter nas imports and the script stops
    guard = PRELUDE.split("import numpy")[0].format(blocked=[], site=[], x="")
    result = subprocess.run([sys.executable, "-c", guard], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert result.returncode != 0
    assert "importable" in result.stderr
