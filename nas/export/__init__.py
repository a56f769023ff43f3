"""Export a subnet as a deployable model (safetensors, TorchScript, ONNX) with a model card.

`export_subnet` (supernet -> static network with recalibrated BN), `load_exported` (rebuild
the pytorch format), `pick_from_front` (choose a subnet of a search's Pareto front).
"""

from __future__ import annotations

from nas.export.export import ExportReport, export_model, export_network, export_subnet
from nas.export.formats import FORMATS, parse_formats
from nas.export.load import load_exported
from nas.export.parity import TOLERANCES, FormatParity, ParityError

__all__ = [
    "FORMATS",
    "TOLERANCES",
    "ExportReport",
    "FormatParity",
    "ParityError",
    "export_model",
    "export_network",
    "export_subnet",
    "load_exported",
    "parse_formats",
]
