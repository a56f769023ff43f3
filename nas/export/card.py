"""The export's model card: `metrics.json` (machine-readable) and `model_card.md` (for people).

Both are written from one metrics mapping so they can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from nas.artifacts import atomic_write_json, atomic_write_text
from nas.export.parity import FormatParity

METRICS_FILE = "metrics.json"
CARD_FILE = "model_card.md"


def _percent(correct: int, total: int) -> float | None:
    return 100.0 * correct / total if total else None


def build_metrics(
    *,
    arch_json: Mapping[str, Any],
    model: nn.Module,
    parity: Sequence[FormatParity],
    reference_correct: int,
    val_total: int,
    test: tuple[int, int],
    measured_latency: Mapping[str, Any],
    predicted_latency: Mapping[str, Any],
    provenance: Mapping[str, Any],
    environment: Mapping[str, Any],
    created: str,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The `metrics.json` mapping of one export."""
    complexity = dict(arch_json.get("complexity") or {})
    counted = sum(p.numel() for p in model.parameters())
    exported_correct = parity[0].val_correct if parity else reference_correct
    return {
        "format": "nas-export-metrics/1",
        "status": "ok" if all(p.passed for p in parity) else "parity_failed",
        "created": created,
        "arch_id": arch_json["arch_id"],
        "arch": arch_json["arch"],
        "space": arch_json["space"],
        "summary": describe_arch(arch_json["arch"]),
        "dataset": arch_json.get("dataset"),
        "input": arch_json.get("input"),
        "files": arch_json.get("files"),
        "complexity": {
            "params": complexity.get("params", counted), "macs": complexity.get("macs"),
            "params_counted": counted,
        },
        "accuracy": {
            "val_top1": _percent(exported_correct, val_total),
            "val_top1_supernet": _percent(reference_correct, val_total),
            "test_top1": _percent(*test),
            "val_images": val_total,
            "test_images": test[1],
        },
        "parity": {p.format: p.to_dict() for p in parity},
        "latency": {"measured": dict(measured_latency), "predicted": dict(predicted_latency)},
        "provenance": dict(provenance),
        "environment": dict(environment),
        **dict(extra),
    }


def describe_arch(arch: Mapping[str, Any]) -> str:
    """A one-line human summary: input side, then per stage the blocks that run as
    `k{kernel}e{expand}` (OFA-style spaces), then any other scalar choices."""
    parts = []
    if "resolution" in arch:
        parts.append(f"input {arch['resolution']}px")
    depth, kernels, expands = arch.get("depth"), arch.get("kernel_size"), arch.get("expand_ratio")
    if isinstance(depth, list) and isinstance(kernels, list) and isinstance(expands, list):
        per_stage = len(kernels) // len(depth) if depth else 0
        stages = []
        for s, d in enumerate(depth):
            blocks = range(s * per_stage, s * per_stage + int(d))
            stages.append(" ".join(f"k{kernels[b]}e{expands[b]}" for b in blocks))
        parts.append(f"{sum(depth)} blocks in {len(depth)} stages: " + " | ".join(stages))
    for cell in ("normal", "reduce"):  # DARTS genotypes: every edge, as op(input node)
        edges = arch.get(cell)
        if isinstance(edges, list):
            parts.append(f"{cell} cell " + " ".join(
                f"{edge[0]}({edge[1]})" for edge in edges if isinstance(edge, (list, tuple))))
    for key, value in arch.items():
        if key not in ("resolution", "depth", "kernel_size", "expand_ratio") and not isinstance(
            value, (list, dict)
        ):
            parts.append(f"{key} {value}")
    # the whole of it: a cut architecture cannot be read back or compared
    return ", ".join(parts) or json.dumps(arch, sort_keys=True)


def write_card(out_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Write `metrics.json` and `model_card.md` into `out_dir`."""
    atomic_write_json(out_dir / METRICS_FILE, dict(metrics))
    atomic_write_text(out_dir / CARD_FILE, render_card(metrics, folder=str(out_dir)))


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def render_card(metrics: Mapping[str, Any], *, folder: str = "EXPORT_DIR") -> str:
    """The model card in Markdown."""
    acc, cx, prov = metrics["accuracy"], metrics["complexity"], metrics.get("provenance", {})
    lines = [
        f"# Model card: subnet `{metrics['arch_id']}`", "",
        f"Status: **{metrics['status']}**. Space `{metrics['space'].get('name')}`, "
        f"dataset `{metrics.get('dataset')}`.", "",
        "## Architecture", "", metrics["summary"], "",
        "```json", json.dumps(metrics["arch"], sort_keys=True), "```", "",
        f"- parameters: {_fmt(cx.get('params'))} ({_fmt(_millions(cx.get('params')))} M)",
        f"- MACs: {_fmt(cx.get('macs'))} ({_fmt(_millions(cx.get('macs')))} M)",
        f"- input: {_input_line(metrics.get('input') or {})}", "",
        "## Accuracy", "",
        f"- validation top-1: {_fmt(acc['val_top1'], suffix=' %')} "
        f"({acc['val_images']} images; the supernet's subnet: "
        f"{_fmt(acc['val_top1_supernet'], suffix=' %')})",
        f"- test top-1: {_fmt(acc['test_top1'], suffix=' %')} ({acc['test_images']} images)", "",
        "## Latency", "", *_latency_lines(metrics["latency"]), "",
        "## Files and parity", "", *_parity_lines(metrics), "",
        "## How it was produced", "", *_provenance_lines(prov, metrics), "",
        "Load it:", "", "```python", *_usage_lines(metrics.get("files") or {}, folder), "```", "",
    ]
    return "\n".join(lines)


def _millions(value: Any) -> float | None:
    return value / 1e6 if isinstance(value, (int, float)) else None


def _input_line(spec: Mapping[str, Any]) -> str:
    if not spec:
        return "n/a"
    return (
        f"float32 {spec.get('layout', 'NCHW')} {spec.get('shape')}, "
        f"{spec.get('preprocess')}; mean {_round(spec.get('mean'))}, std {_round(spec.get('std'))}"
    )


def _round(values: Any) -> Any:
    return [round(v, 4) for v in values] if isinstance(values, list) else values


def _latency_lines(latency: Mapping[str, Any]) -> list[str]:
    """One line per device: measured here at export (batch 1) and predicted by the run."""
    measured = latency.get("measured") or {}
    predicted = latency.get("predicted") or {}
    lines = []
    for device in sorted(set(measured) | set(predicted)):
        parts = []
        stats = measured.get(device)
        if isinstance(stats, Mapping) and "median_ms" in stats:
            parts.append(
                f"measured {_fmt(stats['median_ms'], 3)} ms (IQR {_fmt(stats.get('q1_ms'), 3)}"
                f"-{_fmt(stats.get('q3_ms'), 3)}, {stats.get('n')} runs, batch "
                f"{stats.get('batch_size')}, {stats.get('threads')} thread(s)"
                + (f"; {stats['form']}" if stats.get("form") else "") + ")"
            )
        elif isinstance(stats, Mapping) and "error" in stats:
            parts.append(f"not measured here ({stats['error']})")
        if device in predicted:
            parts.append(f"predicted {_fmt(predicted[device], 3)} ms by the run's latency model")
        lines.append(f"- `{device}`: " + "; ".join(parts))
    if measured:
        lines.append("\nMeasured at export time on this machine; other load inflates wall-clock "
                     "timings.")
    return lines or ["- not measured, and no profiled device (run `nas profile`)"]


def _parity_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = []
    deploy = metrics.get("deploy") or {}
    for name, p in metrics["parity"].items():
        verdict = "ok" if p["passed"] else "FAILED"
        held = p.get("form") or ""
        limit = p.get("allowed", p["tolerance"])
        lines.append(
            f"- `{metrics['files'][name]}` ({name}{', ' + held if held else ''}): max |logit "
            f"diff| vs supernet {p['max_abs_diff']:.2e} (limit {limit:.2g}), val top-1 "
            f"{p['val_correct']}/{p['val_total']} vs "
            f"{p['reference_correct']}/{p['val_total']}: {verdict}"
        )
        for tried in (deploy.get(name) or {}).get("tried", []):
            if tried["form"]["label"] != held or name == "pytorch":
                state = "accepted" if tried.get("accepted", tried["passed"]) else "not used"
                lines.append(f"  - tried {tried['form']['label']}: max |logit diff| "
                             f"{tried['max_abs_diff']:.2e} (needs <= "
                             f"{tried.get('required', 0.0):.2g}), {state}")
    if "pytorch" in deploy:
        lines.append("- `nas.load_exported(DIR)` returns the pytorch form above; "
                     "`fuse_bn=False` gives the stored network with its batch norms (for "
                     "fine-tuning)")
    return lines + ["- `arch.json`: architecture, space spec, input spec and chosen forms"]


def _provenance_lines(prov: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[str]:
    env = metrics.get("environment") or {}
    lines = [f"- {key}: `{value}`" for key, value in prov.items() if key != "commands"]
    if isinstance(metrics.get("bn_calibration"), Mapping):
        lines.append(f"- BN statistics: {_bn_line(metrics['bn_calibration'])}")
    for command in prov.get("commands") or []:
        lines.append(f"- command: `{command}`")
    lines.append(f"- git revision: `{env.get('git_revision')}`, nas {env.get('nas')}, "
                 f"torch {env.get('torch')}; exported {metrics.get('created')}")
    return lines


def _bn_line(calibration: Mapping[str, Any]) -> str:
    if not calibration.get("batches"):
        return "kept as stored in the supernet, not recalibrated (`--no-bn-recalibration`)"
    return (f"recalibrated for this subnet on {calibration['batches']} training batches of "
            f"{calibration.get('batch_size')} (seed {calibration.get('seed')})")


def _usage_lines(files: Mapping[str, str], folder: str) -> list[str]:
    lines = []
    if "pytorch" in files:
        lines += ["import nas",
                  f"model = nas.load_exported({folder!r})  # needs nas; inference form above",
                  f"trainable = nas.load_exported({folder!r}, fuse_bn=False)  # BN kept"]
    if "torchscript" in files:
        script = folder + "/model.pt"
        lines += ["import torch", f"model = torch.jit.load({script!r})  # torch only"]
    if "onnx" in files:
        lines += ["import onnxruntime as ort",
                  f"session = ort.InferenceSession({folder + '/model.onnx'!r})  # no torch",
                  "logits = session.run(['logits'], {'input': images})[0]  # images: float32 NCHW"]
    return lines
