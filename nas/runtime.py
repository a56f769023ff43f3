"""Torch runtime helpers shared by every stage that runs a network (train, eval, search, export).

Kept out of `nas.train` so that search and export reach them without importing training.
"""

from __future__ import annotations

import torch

from nas.errors import DeviceError


def resolve_device(requested: str) -> torch.device:
    """`cpu`, `cuda` or `cuda:i`, checked against this machine.

    Raises:
        DeviceError: unknown device string, or CUDA requested but not available.
    """
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise DeviceError(f"expected --device cpu, cuda or cuda:N, got '{requested}'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {requested}: CUDA is not available on this machine "
                "(CPU-only torch or no GPU); use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {requested}: expected an index below {torch.cuda.device_count()}"
            )
    elif device.type != "cpu":
        raise DeviceError(f"expected --device cpu, cuda or cuda:N, got '{requested}'")
    return device
