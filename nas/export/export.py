"""Export one subnet: recalibrate BN, extract a static network, write formats, check parity.

`export_subnet` is the supernet path (what `nas export` runs). `export_model` is the generic
part that any static network goes through (a fine-tuned export, a DARTS evaluation network):
it writes `arch.json` and each format, reads every format back from disk, compares it with a
reference function on validation data, times it on this CPU and writes the model card.

A parity failure is written to `metrics.json` (status "parity_failed") and then raised as
`ParityError`, so the evidence stays on disk next to the files that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import nas.export.formats as fmt
from nas.arch import Arch, arch_id
from nas.artifacts import atomic_write_json, atomic_write_text, environment, now_iso
from nas.export.deploy import FORMS, STORED, DeployForm, deployable
from nas.export.load import SavedModel, load_exported
from nas.export.parity import FormatParity, ParityCheck, count_correct
from nas.export.parity import raise_on_failure as _raise_on_failure
from nas.profile.devices import TimingSetup
from nas.supernet.evaluate import activate_and_recalibrate, resize_to

if TYPE_CHECKING:
    from nas.data import DatasetSplits
    from nas.supernet import Supernet
    from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

Batches = list[tuple[torch.Tensor, torch.Tensor]]
# a BN-folding form is kept only if its logits are within this fraction of the parity limit
FOLD_MARGIN = 0.5


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how it checked out (also in `metrics.json`)."""

    out_dir: Path
    arch: dict[str, Any]
    arch_id: str
    formats: tuple[str, ...]
    parity: tuple[FormatParity, ...]
    metrics: dict[str, Any] = field(repr=False)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.parity)

    def files(self) -> list[Path]:
        """Every file of the export folder, in a stable order."""
        files = self.out_dir.iterdir()
        return sorted(p for p in files if p.is_file() and not p.name.startswith("."))


def split_batches(
    splits: DatasetSplits, which: str, *, batch_size: int, resolution: int | None,
    limit: int | None = None,
) -> Batches:
    """Normalised CPU batches of a split (no augmentation), resized to `resolution`."""
    from nas.data import BatchLoader

    loader = BatchLoader.for_splits(splits, which, batch_size=batch_size, device="cpu")
    batches = []
    for index, (images, labels) in enumerate(loader.epoch(0)):
        if limit is not None and index >= limit:
            break
        batches.append((resize_to(images, resolution), labels))
    return batches


def export_subnet(
    supernet: Supernet,
    arch: Arch,
    out_dir: Path,
    *,
    splits: DatasetSplits,
    formats: Sequence[str] = fmt.FORMATS,
    calib_batches: int = 10,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    provenance: Mapping[str, Any] | None = None,
    predicted_latency: Mapping[str, Any] | None = None,
    latency_devices: Sequence[str] = ("cpu",),
    latency_setups: Mapping[str, TimingSetup] | None = None,
) -> ExportReport:
    """Export `arch` of `supernet` as a static network with recalibrated BN statistics.

    The supernet's BN statistics are overwritten for `arch` (it is left in eval mode with
    `arch` active); load it again for other subnets.

    Args:
        supernet: a trained supernet.
        arch: the subnet, in any format `supernet.space.normalize` accepts.
        out_dir: the export folder (created; existing files of the same names are replaced).
        splits: the run's dataset: `train` calibrates BN, `val` checks parity, `test` is
            reported in the card.
        formats: any of "pytorch", "torchscript", "onnx".
        calib_batches: training batches for BN recalibration (0 keeps the stored statistics).
        batch_size: batch size for calibration and evaluation.
        device: where calibration runs; parity and evaluation run on the CPU, where exported
            files are checked.
        seed: picks the calibration images.
        provenance: how the export was made (run, search tag, command), for the model card.
        predicted_latency: `{device: milliseconds}` from the run's latency predictors.
        latency_devices: devices of this machine (`nas profile` names: cpu, onnxruntime,
            cuda) to time the exported model on, batch 1, as the profiler does; () skips it.
        latency_setups: threads and clock of each device's timing, as its profile was timed
            (default: 1 thread, wall clock).

    Raises:
        ParityError: a format's outputs or accuracy differ from the supernet's subnet.
    """
    space = supernet.space
    canonical = space.normalize(arch)
    chosen = fmt.parse_formats(formats)
    # the images search and `nas eval` calibrate with, so the exported accuracy is the measured one
    activate_and_recalibrate(
        supernet, canonical, splits, num_batches=calib_batches, batch_size=batch_size,
        seed=seed, device=torch.device(device),
    )
    supernet.cpu().eval()
    supernet.set_active(canonical)
    static = supernet.extract_subnet(canonical).cpu().eval()
    resolution = supernet.input_resolution(canonical) or splits.image_size
    meta = {
        "builder": "extract_subnet", "space": space.spec(), "arch": canonical,
        "complexity": space.complexity(canonical),
    }
    return export_model(
        static, out_dir, meta=meta, reference=supernet, splits=splits, formats=chosen,
        resolution=resolution, batch_size=batch_size, provenance=provenance,
        predicted_latency=predicted_latency, latency_devices=latency_devices,
        latency_setups=latency_setups,
        extra={"bn_calibration": {
            "batches": calib_batches, "batch_size": batch_size, "seed": seed}},
    )


def export_network(
    space: SearchSpace,
    arch: Arch,
    model: nn.Module,
    out_dir: Path,
    *,
    splits: DatasetSplits,
    formats: Sequence[str] = fmt.FORMATS,
    batch_size: int = 64,
    provenance: Mapping[str, Any] | None = None,
    latency_devices: Sequence[str] = ("cpu",),
    latency_setups: Mapping[str, TimingSetup] | None = None,
) -> ExportReport:
    """Export a trained stand-alone network, `space.build_network(arch)` (a DARTS evaluation
    network trained from a genotype, a subnet trained alone), checked against the model itself.

    `nas.load_exported` rebuilds it with `space.build_network(arch)`, so the model must have
    exactly that structure (including any auxiliary head).
    """
    canonical = space.normalize(arch)
    model = model.cpu().eval()
    side = space.input_resolution(canonical)
    meta = {"builder": "build_network", "builder_kwargs": {}, "space": space.spec(),
            "arch": canonical, "complexity": space.complexity(canonical)}
    return export_model(
        model, out_dir, meta=meta, reference=model, splits=splits,
        formats=fmt.parse_formats(formats), resolution=side, batch_size=batch_size,
        provenance=provenance, latency_devices=latency_devices, latency_setups=latency_setups,
    )


def export_model(
    model: nn.Module,
    out_dir: Path,
    *,
    meta: Mapping[str, Any],
    reference: Callable[[torch.Tensor], torch.Tensor],
    splits: DatasetSplits,
    formats: Sequence[str],
    resolution: int,
    batch_size: int = 64,
    provenance: Mapping[str, Any] | None = None,
    predicted_latency: Mapping[str, Any] | None = None,
    latency_devices: Sequence[str] = ("cpu",),
    latency_setups: Mapping[str, TimingSetup] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Write `model` in `formats` to `out_dir` and check each against `reference` (CPU).

    Args:
        model: the static network (eval mode, CPU).
        meta: `arch.json` fields: `space` (spec), `arch`, `builder` (see `nas.export.load`),
            optionally `builder_kwargs` and `complexity` (`{"params", "macs"}`).
        reference: what the exported files must reproduce (the supernet with the subnet
            active, or the model itself).
    """
    from nas.export.card import build_metrics, write_card

    _begin_folder(out_dir)
    val = split_batches(splits, "val", batch_size=batch_size, resolution=resolution)
    if not val:
        from nas.errors import DatasetError

        raise DatasetError("expected a non-empty validation split to check parity, got none")
    example = val[0][0][:1]
    arch_json = _arch_json(meta, splits, resolution, formats)
    atomic_write_json(out_dir / fmt.ARCH_FILE, arch_json)
    if "pytorch" in formats:
        fmt.save_pytorch(model, out_dir)
    check = ParityCheck(reference, val)
    results, loaded, deploy = [], {}, {}
    for name in formats:
        result, loaded[name], record = _write_checked(name, model, example, out_dir, check)
        results.append(result)
        deploy[name] = record
    arch_json["deploy"] = {name: record["form"] for name, record in deploy.items()}
    atomic_write_json(out_dir / fmt.ARCH_FILE, arch_json)  # now with the chosen forms
    first = loaded[formats[0]]
    test = split_batches(splits, "test", batch_size=batch_size, resolution=resolution)
    test_correct, test_total = count_correct(first, test) if test else (0, 0)
    latency = _measure_forms(model, tuple(example.shape), latency_devices, latency_setups,
                             deploy)
    metrics = build_metrics(
        arch_json=arch_json, model=model, parity=results, reference_correct=check.correct,
        val_total=check.total, test=(test_correct, test_total), measured_latency=latency,
        predicted_latency=dict(predicted_latency or {}), provenance=dict(provenance or {}),
        environment=environment(), created=now_iso(),
        extra={**dict(extra or {}), "deploy": deploy},
    )
    write_card(out_dir, metrics)
    (out_dir / fmt.INCOMPLETE_FILE).unlink(missing_ok=True)  # complete, passed or not
    report = ExportReport(
        out_dir=out_dir, arch=dict(arch_json["arch"]), arch_id=arch_json["arch_id"],
        formats=tuple(formats), parity=tuple(results), metrics=metrics,
    )
    _raise_on_failure(results)
    return report


def _begin_folder(out_dir: Path) -> None:
    """Mark `out_dir` incomplete until `metrics.json` and the card are written, and remove
    temporary files a killed export left (the caller holds the folder's lock)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    atomic_write_text(out_dir / fmt.INCOMPLETE_FILE, (
        f"export started {now_iso()} and has not finished (still running, killed or failed);"
        " run the same `nas export` again to complete it\n"))


def _write_checked(
    name: str, model: nn.Module, example: torch.Tensor, out_dir: Path, check: ParityCheck
) -> tuple[FormatParity, SavedModel, dict[str, Any]]:
    """Write format `name` in the fastest form that passes parity, reading each back from disk.

    Forms are tried in `deploy.FORMS[name]` order, the stored (trained) form last. A form that
    folds BN must pass with `FOLD_MARGIN` to spare: the check sees one validation batch, and
    folding is an optional speed-up whose rounding grows with the BN scales, so a form that
    only just passes on that batch may not on the next. For pytorch every form is checked,
    since the one weights file serves all `load_exported` forms. The record says which form
    the format holds (the first accepted, else the stored one) and what each form measured.
    """
    tried: list[dict[str, Any]] = []
    chosen: tuple[FormatParity, SavedModel, DeployForm] | None = None
    # read from disk once; rebuilding the network for each form would rebuild its supernet
    stored = load_exported(out_dir, fuse_bn=False) if name == "pytorch" else None
    for form in FORMS[name]:
        if name == "torchscript":
            fmt.save_torchscript(model, example, out_dir, form=form)
        elif name == "onnx":
            fmt.save_onnx(model, example, out_dir, form=form)
        saved = SavedModel(name, out_dir, form=form, stored=stored)
        result = check(name, saved, form)
        required = result.allowed * (FOLD_MARGIN if form.fuse_bn else 1.0)
        accepted = result.passed and result.max_abs_diff <= required
        tried.append({"form": form.to_dict(), "max_abs_diff": result.max_abs_diff,
                      "required": required, "val_correct": result.val_correct,
                      "passed": result.passed, "accepted": accepted})
        if chosen is None and (accepted or form == STORED):
            chosen = (result, saved, form)
            if name != "pytorch":
                break
        if not accepted:
            logger.info("%s as '%s': max |logit diff| %.3g, needs <= %.3g; trying the next form",
                        name, form.label, result.max_abs_diff, required)
    assert chosen is not None  # every list ends with the stored form
    result, saved, form = chosen
    return result, saved, {"form": form.to_dict(), "tried": tried}


def _arch_json(
    meta: Mapping[str, Any], splits: DatasetSplits, resolution: int, formats: Sequence[str]
) -> dict[str, Any]:
    arch = dict(meta["arch"])
    return {
        "format": fmt.EXPORT_FORMAT,
        **{k: v for k, v in meta.items() if k != "arch"},
        "arch": arch,
        "arch_id": arch_id(arch),
        "num_classes": splits.num_classes,
        "dataset": splits.name,
        "input": {
            "name": fmt.INPUT_NAME, "shape": [1, splits.channels, resolution, resolution],
            "dtype": "float32", "layout": "NCHW", "mean": list(splits.mean),
            "std": list(splits.std),
            "preprocess": f"pixels / 255, minus mean, divided by std (per channel), "
                          f"resized (bilinear) to {resolution}x{resolution}",
        },
        "output": {"name": fmt.OUTPUT_NAME, "shape": [1, splits.num_classes]},
        "files": {name: fmt.FILES[name] for name in formats},
        **({"onnx_opset": fmt.ONNX_OPSET} if "onnx" in formats else {}),
    }


def _measure_forms(
    model: nn.Module, input_shape: tuple[int, ...], devices: Sequence[str],
    setups: Mapping[str, TimingSetup] | None, deploy: Mapping[str, Any],
) -> dict[str, Any]:
    """`measure_latency` of the form users get: torch devices time the pytorch format's form
    (what `load_exported` returns), onnxruntime devices the ONNX file's form."""
    def chosen(fmt_name: str) -> DeployForm:
        record = deploy.get(fmt_name)
        return DeployForm.from_dict(record["form"]) if record else STORED

    latency: dict[str, Any] = {}
    for device in devices:
        form = chosen("onnx" if device.startswith("onnxruntime") else "pytorch")
        timing = measure_latency(deployable(model, form), input_shape, (device,), setups)
        for entry in timing.values():
            if "median_ms" in entry:
                entry["form"] = form.label
        latency.update(timing)
    return latency


def measure_latency(
    model: nn.Module, input_shape: tuple[int, ...], devices: Sequence[str],
    setups: Mapping[str, TimingSetup] | None = None,
) -> dict[str, Any]:
    """`{device: timing}` of `model` at `input_shape`, measured like `nas profile` does.

    A device that is not available here is recorded with its error instead of failing the
    export: the files are already written and checked by then.
    """
    from nas.errors import NasError
    from nas.profile.measure import measure

    out: dict[str, Any] = {}
    previous_threads = torch.get_num_threads()
    try:
        for name in devices:
            setup = (setups or {}).get(name) or TimingSetup(threads=1)
            try:
                device = setup.device(name)
                timing = measure(device.prepare(model, input_shape))
            except NasError as exc:
                out[name] = {"error": str(exc)}
                continue
            out[name] = {**timing.to_dict(), "batch_size": input_shape[0],
                         "threads": setup.threads or previous_threads, "clock": setup.clock}
    finally:
        torch.set_num_threads(previous_threads)  # the cpu device sets it process-wide
    return out
