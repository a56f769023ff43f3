"""The inference form of an exported network: BN folded, no-op modules dropped, NHWC layout.

An exported network is stored as it was trained (convs and batch norms, NCHW), so that
`nas finetune` can keep training it. For inference three rewrites make it faster without
changing the function beyond float rounding:

- BN folding (`nas.layers.fuse.fuse_conv_bn`): each eval-mode BN after a conv becomes the
  conv's bias, which saves one full pass over every activation tensor;
- dropping the `nn.Identity` placeholders that folding leaves in `nn.Sequential` containers
  (one Python module call each, ~40 per MobileNetV3 forward);
- channels-last (NHWC) weights and inputs: oneDNN's convolutions, the depthwise ones above all,
  run faster on NHWC tensors on CPU. The supernet already runs NHWC, so an NCHW export would
  hand back part of the gain of having a static network.

The input conversion is a forward pre-hook, not a wrapper module, so the returned network keeps
its class and state-dict names; `torch.jit.trace` records the hook's `contiguous` call, so the
TorchScript file converts its input itself.

Folding changes float rounding, so the export checks every form against the supernet and falls
back to the stored form when a folded one misses the parity limit (see `DeployForm`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from nas.layers.fuse import fuse_conv_bn


@dataclass(frozen=True)
class DeployForm:
    """How a network is prepared for inference.

    Attributes:
        fuse_bn: fold BN into the preceding convs and drop the identities left behind.
        channels_last: NHWC weights, and inputs converted to NHWC on entry.
        freeze: (TorchScript only) `torch.jit.freeze`: weights inlined as constants.
    """

    fuse_bn: bool = False
    channels_last: bool = False
    freeze: bool = False

    @property
    def label(self) -> str:
        parts = ["BN folded" if self.fuse_bn else "BN kept"]
        parts.append("channels-last" if self.channels_last else "NCHW")
        if self.freeze:
            parts.append("frozen")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployForm:
        return cls(
            fuse_bn=bool(data.get("fuse_bn", False)),
            channels_last=bool(data.get("channels_last", False)),
            freeze=bool(data.get("freeze", False)),
        )


STORED = DeployForm()
# Tried in this order; the first that meets the parity limits is what a format holds (for the
# pytorch format: what `load_exported` returns by default), the stored form being the last
# resort. NHWC without folding is bit-identical to the OFA supernets, which run NHWC themselves;
# folding moves logits by ~1e-6 relative on ofa-mbv3 but by 1e-5 to 3e-5 on ofa-resnet50, whose
# exports therefore mostly keep their BNs (measured; see bench/README.md).
EAGER_FORMS = (
    DeployForm(fuse_bn=True, channels_last=True), DeployForm(channels_last=True), STORED,
)
TORCHSCRIPT_FORMS = (
    DeployForm(fuse_bn=True, channels_last=True, freeze=True),
    DeployForm(channels_last=True, freeze=True),
    STORED,
)
# onnxruntime folds BN and picks its own layout; folding first only makes the graph smaller
# (and the file identical for every runtime), NHWC would only add transposes
ONNX_FORMS = (DeployForm(fuse_bn=True), STORED)
FORMS: Mapping[str, tuple[DeployForm, ...]] = {
    "pytorch": EAGER_FORMS, "torchscript": TORCHSCRIPT_FORMS, "onnx": ONNX_FORMS,
}


def to_channels_last(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: the first input in NHWC memory layout (a no-op when it already is)."""
    first, *rest = args
    if isinstance(first, torch.Tensor) and first.dim() == 4:
        first = first.contiguous(memory_format=torch.channels_last)
    return (first, *rest)


def drop_identities(model: nn.Module) -> nn.Module:
    """Remove `nn.Identity` entries of every `nn.Sequential` in `model`, in place.

    A Sequential calls its children in order, so an identity child does nothing but cost a
    module call. Names of the remaining children (and so state-dict keys) are unchanged.
    """
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for name in [n for n, m in module._modules.items() if isinstance(m, nn.Identity)]:
                del module._modules[name]
    return model


def deployable(model: nn.Module, form: DeployForm) -> nn.Module:
    """A copy of `model` in eval mode prepared as `form` says (`model` is left untouched).

    `form.freeze` is ignored here: it applies to TorchScript (`trace`).
    """
    prepared = copy.deepcopy(model).eval()
    if form.fuse_bn:
        prepared = drop_identities(fuse_conv_bn(prepared))
    if form.channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        prepared.register_forward_pre_hook(to_channels_last)
    return prepared


def trace(model: nn.Module, example: torch.Tensor, form: DeployForm) -> torch.jit.ScriptModule:
    """`model` prepared as `form` and traced on `example` (frozen when `form.freeze`).

    Freezing inlines weights and attributes as graph constants, which removes the attribute
    lookups of every call. It runs without `optimize_numerics`, whose passes would fold BN into
    the convs again (that is `form.fuse_bn`'s decision, checked against the parity limit).
    `torch.jit.optimize_for_inference` is not used: with torch 2.13 its output saves but does
    not load back (`required keyword attribute 'value' is undefined`).
    """
    import warnings

    prepared = deployable(model, form)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.simplefilter("ignore", category=DeprecationWarning)
        traced = torch.jit.trace(prepared, example.cpu(), check_trace=False)  # type: ignore[no-untyped-call]
        if form.freeze:
            traced = torch.jit.freeze(traced.eval(), optimize_numerics=False)
    result: torch.jit.ScriptModule = traced
    return result
