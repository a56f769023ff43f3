"""Exported files reproduce the supernet's subnet: outputs, accuracy and BN statistics."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import nas
from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.export import ExportReport, ParityError, export_model, export_subnet, load_exported
from nas.export.load import SavedModel
from nas.supernet import Supernet
from nas.supernet.bn import recalibrate_bn
from nas.supernet.evaluate import calibration_images
from tests.nas.export.conftest import SUPERNET_SPACES, tiny_space, tiny_splits

MakeExport = Callable[..., tuple[Supernet, ExportReport]]


def _input(supernet: Supernet, arch: dict, channels: int = 3, batch: int = 3) -> torch.Tensor:
    side = supernet.input_resolution(arch) or 16
    generator = torch.Generator().manual_seed(7)
    return torch.randn(batch, channels, side, side, generator=generator)


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_every_format_matches_the_supernet(name: str, make_export: MakeExport) -> None:
    supernet, report = make_export(name, 0)
    assert report.passed
    assert {p.format for p in report.parity} == {"pytorch", "torchscript", "onnx"}
    for parity in report.parity:
        assert parity.max_abs_diff <= parity.tolerance
        assert parity.val_correct == parity.reference_correct
    names = {p.name for p in report.files()}
    assert {"weights.safetensors", "arch.json", "model.pt", "model.onnx", "metrics.json",
            "model_card.md"} <= names
    metrics = json.loads((report.out_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    assert metrics["accuracy"]["val_top1"] == metrics["accuracy"]["val_top1_supernet"]
    assert metrics["parity"]["onnx"]["tolerance"] == 1e-4
    assert metrics["parity"]["torchscript"]["tolerance"] == 1e-5


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_random_subnets_reload_to_the_same_function(
    name: str, seed: int, make_export: MakeExport
) -> None:
    supernet, report = make_export(name, seed, ("pytorch",))
    assert report.passed
    model = load_exported(report.out_dir)
    assert not any(m.training for m in model.modules())
    supernet.eval()
    supernet.set_active(report.arch)
    x = _input(supernet, report.arch)
    with torch.no_grad():
        expected, got = supernet(x), model(x)
    # the export's limit: 1e-5 absolute for logits within +-1, relative to the largest beyond
    assert (got - expected).abs().max() <= 1e-5 * max(1.0, float(expected.abs().max()))
    # the exported network is static: no module of the supernet's (dynamic) classes remains
    supernet_types = {type(m) for m in supernet.modules()}
    static_types = {type(m) for m in model.modules()}
    assert not {t for t in supernet_types & static_types if "Dynamic" in t.__name__}


def test_exported_bn_statistics_are_recalibrated_for_the_subnet(tmp_path: Path) -> None:
    space = tiny_space("ofa-mbv3")
    fresh = space.build_supernet()
    arch = space.sample(np.random.default_rng(3))
    # the same subnet, extracted *before* calibration and recalibrated on the same images
    expected = fresh.extract_subnet(arch)
    splits = tiny_splits(space)
    images = calibration_images(
        splits, batch_size=16, device="cpu", seed=3, resolution=fresh.input_resolution(arch)
    )
    recalibrate_bn(expected, images, num_batches=2)
    stale = {k: v.clone() for k, v in fresh.extract_subnet(arch).state_dict().items()}

    report = export_subnet(
        copy.deepcopy(fresh), arch, tmp_path, splits=splits, formats=("pytorch",),
        calib_batches=2, batch_size=16, seed=3, latency_devices=(),
    )
    exported = load_exported(report.out_dir, fuse_bn=False).state_dict()
    means = [k for k in exported if k.endswith("running_mean")]
    assert means
    for key, value in expected.state_dict().items():
        assert torch.allclose(exported[key].float(), value.float(), atol=1e-5), key
    assert any(not torch.allclose(exported[k], stale[k]) for k in means)


def test_tolerance_scales_with_large_logits() -> None:
    from nas.export.parity import FormatParity, logit_scale

    assert logit_scale(torch.tensor([[0.5, -0.2]])) == 1.0
    assert logit_scale(torch.tensor([[3.0, -28.0]])) == 28.0
    small = FormatParity("pytorch", 2e-5, 1e-5, 1, 1, 1, scale=1.0)
    large = FormatParity("pytorch", 2e-5, 1e-5, 1, 1, 1, scale=28.0)
    assert not small.passed and large.passed
    assert "x max(1, largest |logit| = 1)" in small.problem()


def test_parity_failure_is_an_error_naming_the_format(tmp_path: Path) -> None:
    space = tiny_space("ofa-mbv3")
    supernet = space.build_supernet().eval()
    arch = space.smallest()
    supernet.set_active(arch)
    model = supernet.extract_subnet(arch).eval()

    def shifted(x: torch.Tensor) -> torch.Tensor:
        return supernet(x) + 1e-3

    meta = {"builder": "extract_subnet", "space": space.spec(), "arch": arch}
    with pytest.raises(ParityError, match=r"pytorch: max \|logit difference\| .* 0\.001"):
        export_model(
            model, tmp_path, meta=meta, reference=shifted, splits=tiny_splits(space),
            formats=("pytorch",), resolution=supernet.input_resolution(arch) or 16,
            batch_size=16, latency_devices=(),
        )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "parity_failed"
    assert metrics["parity"]["pytorch"]["outputs_match"] is False


def test_load_exported_errors(ofa_export: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="arch.json"):
        load_exported(tmp_path)
    only_arch = tmp_path / "only-arch"
    only_arch.mkdir()
    (only_arch / "arch.json").write_text((ofa_export / "arch.json").read_text())
    with pytest.raises(ArtifactError, match="no pytorch format"):
        load_exported(only_arch)
    # weights of another subnet do not fit this arch
    meta = json.loads((ofa_export / "arch.json").read_text())
    space = tiny_space("ofa-mbv3")
    meta["arch"] = space.largest() if meta["arch"] != space.largest() else space.smallest()
    (only_arch / "arch.json").write_text(json.dumps(meta))
    (only_arch / "weights.safetensors").write_bytes(
        (ofa_export / "weights.safetensors").read_bytes()
    )
    with pytest.raises(IncompatibleArtifactError, match="do not fit"):
        load_exported(only_arch)


def test_saved_formats_run_on_a_batch_of_another_size(ofa_export: Path) -> None:
    meta = json.loads((ofa_export / "arch.json").read_text())
    _, channels, side, _ = meta["input"]["shape"]
    x = torch.randn(5, channels, side, side, generator=torch.Generator().manual_seed(0))
    outputs = {f: SavedModel(f, ofa_export)(x) for f in ("pytorch", "torchscript", "onnx")}
    assert outputs["pytorch"].shape == (5, meta["num_classes"])
    assert torch.allclose(outputs["torchscript"], outputs["pytorch"], atol=1e-5)
    assert torch.allclose(outputs["onnx"], outputs["pytorch"], atol=1e-4)


def test_nas_load_exported_is_lazy(ofa_export: Path) -> None:
    assert nas.load_exported is load_exported
    code = "import nas, sys; assert 'torch' not in sys.modules; print('light')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_standalone_network_export_round_trips(tmp_path: Path) -> None:
    """A DARTS evaluation network trained from a genotype (`build_network`) exports too."""
    from search_spaces import SPACES

    if "darts" not in SPACES:
        pytest.skip("no darts space registered")
    from nas.export import export_network

    space = tiny_space("darts")
    arch = space.sample(np.random.default_rng(0))
    model = space.build_network(arch).eval()
    report = export_network(space, arch, model, tmp_path, splits=tiny_splits(space),
                            formats=("pytorch", "onnx"), batch_size=16, latency_devices=())
    assert report.passed
    meta = json.loads((tmp_path / "arch.json").read_text())
    assert meta["builder"] == "build_network"
    loaded = load_exported(tmp_path)
    x = torch.randn(2, 3, space.image_size, space.image_size)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
