"""Inference forms of the exported files: BN folded / NHWC / frozen when parity allows, the stored
form otherwise, and `load_exported(fuse_bn=...)`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nas.export.deploy as deploy
from nas.export import ExportReport, export_subnet, load_exported
from nas.export.deploy import FORMS, STORED, DeployForm, deployable, drop_identities
from nas.export.export import FOLD_MARGIN, split_batches
from nas.export.load import SavedModel
from nas.supernet import Supernet
from tests.nas.export.conftest import SUPERNET_SPACES, tiny_space, tiny_splits

MakeExport = Callable[..., tuple[Supernet, ExportReport]]


def _val_batch(supernet: Supernet, report: ExportReport) -> torch.Tensor:
    space = supernet.space
    side = supernet.input_resolution(report.arch) or int(getattr(space, "image_size", 16))
    return split_batches(tiny_splits(space), "val", batch_size=16, resolution=side)[0][0]


def _limit(parity_record: dict) -> float:
    return float(parity_record["tolerance"]) * float(parity_record["scale"])


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_each_format_holds_the_first_form_that_passes_and_it_matches_the_supernet(
    name: str, seed: int, make_export: MakeExport
) -> None:
    supernet, report = make_export(name, seed)
    assert report.passed
    arch_json = json.loads((report.out_dir / "arch.json").read_text())
    metrics = json.loads((report.out_dir / "metrics.json").read_text())
    supernet.eval()
    supernet.set_active(report.arch)
    x = _val_batch(supernet, report)
    with torch.no_grad():
        expected = supernet(x)
    for fmt, forms in FORMS.items():
        record = metrics["deploy"][fmt]
        chosen = DeployForm.from_dict(record["form"])
        assert arch_json["deploy"][fmt] == record["form"]
        assert metrics["parity"][fmt]["form"] == chosen.label
        tried = record["tried"]
        # tried in order up to the chosen one, which is the first accepted (or the stored one)
        assert [DeployForm.from_dict(t["form"]) for t in tried][: forms.index(chosen) + 1] == list(
            forms[: forms.index(chosen) + 1]
        )
        assert all(not t["accepted"] for t in tried[: forms.index(chosen)])
        for entry in tried:
            margin = FOLD_MARGIN if entry["form"]["fuse_bn"] else 1.0
            assert entry["required"] == pytest.approx(_limit(metrics["parity"][fmt]) * margin)
            assert entry["accepted"] == (entry["passed"] and entry["max_abs_diff"] <= entry[
                "required"])
        # the file on disk, read back, is the chosen form and reproduces the supernet
        got = SavedModel(fmt, report.out_dir)(x)
        tolerance = _limit(metrics["parity"][fmt]) * (FOLD_MARGIN if chosen.fuse_bn else 1.0)
        assert float((got - expected).abs().max()) <= tolerance, (fmt, chosen.label)


@pytest.mark.parametrize("name", ["darts", "ofa-mbv3"])
def test_folding_is_kept_where_it_is_exact_enough(name: str, make_export: MakeExport) -> None:
    # measured at seed 0: darts folds to ~2e-7 of the supernet, ofa-mbv3 to ~0.07 of the limit,
    # both far inside the margin (ofa-resnet50 mostly misses it: see docs/export.md)
    if name not in SUPERNET_SPACES:
        pytest.skip(f"no {name} space registered")
    _, report = make_export(name, 0)
    forms = {p.format: p.form for p in report.parity}
    assert forms["pytorch"] == "BN folded, channels-last"
    assert forms["torchscript"] == "BN folded, channels-last, frozen"
    assert forms["onnx"] == "BN folded, NCHW"


@pytest.mark.slow  # a fresh export with a latency measurement: ~5 s
def test_a_fold_that_misses_parity_falls_back_to_keeping_bn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fuse = deploy.fuse_conv_bn

    def bad_fuse(model: nn.Module) -> nn.Module:
        fused = real_fuse(model)
        with torch.no_grad():
            for module in fused.modules():
                if isinstance(module, nn.Conv2d) and module.bias is not None:
                    module.bias.add_(1e-3)  # a wrong fold: every folded form must be refused
        return fused

    monkeypatch.setattr(deploy, "fuse_conv_bn", bad_fuse)
    space = tiny_space("ofa-mbv3")
    report = export_subnet(
        space.build_supernet(), space.sample(np.random.default_rng(5)), tmp_path,
        splits=tiny_splits(space), calib_batches=2, batch_size=16, latency_devices=("cpu",),
    )
    assert report.passed
    # the latency in the card is that of the form load_exported returns
    assert report.metrics["latency"]["measured"]["cpu"]["form"] == "BN kept, channels-last"
    forms = {p.format: p.form for p in report.parity}
    assert forms == {"pytorch": "BN kept, channels-last", "torchscript":
                     "BN kept, channels-last, frozen", "onnx": "BN kept, NCHW"}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    first = metrics["deploy"]["torchscript"]["tried"][0]
    assert first["form"]["fuse_bn"] and not first["accepted"]
    assert first["max_abs_diff"] > first["required"]
    card = (tmp_path / "model_card.md").read_text()
    assert "tried BN folded, channels-last, frozen" in card and "not used" in card
    assert "1 thread(s); BN kept, channels-last)" in card
    # what the default load returns is the recorded (unfolded) form
    model = load_exported(tmp_path)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_load_exported_fuse_bn_flag(ofa_export: Path) -> None:
    meta = json.loads((ofa_export / "arch.json").read_text())
    stored = load_exported(ofa_export, fuse_bn=False)
    folded = load_exported(ofa_export, fuse_bn=True)
    default = load_exported(ofa_export)
    assert _has_bn(stored) and not _has_bn(folded)
    assert not any(
        isinstance(child, nn.Identity)
        for m in folded.modules() if isinstance(m, nn.Sequential) for child in m
    )
    conv = next(m for m in folded.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # fuse_bn=False is the trainable network exactly as stored (fine-tuning loads it)
    from safetensors.torch import load_file

    weights = load_file(str(ofa_export / "weights.safetensors"))
    assert set(stored.state_dict()) == set(weights)
    spatial = next(m for m in stored.modules() if isinstance(m, nn.Conv2d) and m.groups == 1
                   and m.kernel_size[0] > 1)
    assert spatial.weight.is_contiguous()  # NCHW, as trained
    # the default is what the export recorded
    recorded = DeployForm.from_dict(meta["deploy"]["pytorch"])
    assert _has_bn(default) == (not recorded.fuse_bn)
    _, channels, side, _ = meta["input"]["shape"]
    x = torch.randn(4, channels, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = stored(x), folded(x)
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(a.abs().max()))
    # channels_last can be chosen on its own: NHWC, BN kept, same function
    nhwc = load_exported(ofa_export, fuse_bn=False, channels_last=True)
    assert _has_bn(nhwc)
    with torch.no_grad():
        assert float((nhwc(x) - a).abs().max()) <= 1e-5 * max(1.0, float(a.abs().max()))


def test_exports_without_a_recorded_form_load_as_stored(ofa_export: Path, tmp_path: Path) -> None:
    meta = json.loads((ofa_export / "arch.json").read_text())
    del meta["deploy"]
    (tmp_path / "arch.json").write_text(json.dumps(meta))
    (tmp_path / "weights.safetensors").write_bytes(
        (ofa_export / "weights.safetensors").read_bytes()
    )
    assert _has_bn(load_exported(tmp_path))
    assert not _has_bn(load_exported(tmp_path, fuse_bn=True))


def test_deployable_leaves_the_model_alone_and_drops_only_identities() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                          nn.ReLU(), nn.Identity()).eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)  # type: ignore[operator]
    prepared = deployable(model, DeployForm(fuse_bn=True, channels_last=True))
    assert isinstance(model[1], nn.BatchNorm2d) and len(model) == 4
    assert [type(m) for m in prepared] == [nn.Conv2d, nn.ReLU]
    assert list(prepared.state_dict()) == ["0.weight", "0.bias"]
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), model(x), atol=1e-6, rtol=1e-5)
    assert deployable(model, STORED) is not model
    assert len(drop_identities(nn.Sequential(nn.Identity(), nn.ReLU()))) == 1


def test_frozen_torchscript_is_a_plain_loadable_file(ofa_export: Path) -> None:
    meta = json.loads((ofa_export / "arch.json").read_text())
    form = DeployForm.from_dict(meta["deploy"]["torchscript"])
    assert form.freeze
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13: TorchScript deprecated
        module = torch.jit.load(str(ofa_export / "model.pt"))  # type: ignore[no-untyped-call]
    graph = str(module.graph)
    assert ("aten::contiguous" in graph) == form.channels_last  # the NHWC hook is in the file
    assert ("batch_norm" in graph) == (not form.fuse_bn)
