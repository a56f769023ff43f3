"""A trained supernet's weights: `supernet/weights.safetensors` of a run.

The file holds the final weights with the space spec and the training config in its safetensors
metadata (self-describing, as nanoGPT's checkpoints are; a few-shot run's split too, so its
sub-supernets are rebuilt before the tensors load), plus a readable sidecar
`supernet/space.json`. `load_trained_supernet()` rebuilds the network from these alone; nothing
is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from nas.artifact_kinds import SUPERNET_METADATA, SUPERNET_WEIGHTS
from nas.artifacts import RunLayout, atomic_save_with, atomic_write_json
from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.readers import check_shape, damaged, load_tensors, parse_json, tensors_metadata
from nas.supernet.base import Supernet
from nas.supernet.few_shot import FewShotSupernet, split_supernet

WEIGHTS_FORMAT = "nas-supernet/1"
WEIGHTS_FILE = "weights.safetensors"
SPACE_FILE = "space.json"
SUPERNET_LOCK = "supernet"  # the stage lock of whatever writes supernet/ (training, import)


def weights_path(run: RunLayout) -> Path:
    """Where `run`'s trained supernet weights live (the one place that names the file)."""
    return run.supernet_dir / WEIGHTS_FILE


def save_weights(
    run: RunLayout, net: Supernet, *, space_spec: dict[str, Any], train_config: dict[str, Any]
) -> Path:
    """Write `supernet/weights.safetensors` (+ `space.json`) from `net`'s current weights."""
    from safetensors.torch import save_file

    # safetensors refuses shared storage; own contiguous CPU copies are always accepted
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "space": json.dumps(space_spec, sort_keys=True),
        "train_config": json.dumps(train_config, sort_keys=True),
    }
    if isinstance(net, FewShotSupernet):  # the split decides the layout of the tensors
        metadata["few_shot"] = json.dumps(net.split.to_dict(), sort_keys=True)
    path = weights_path(run)
    atomic_save_with(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    sidecar = {"space": space_spec, "format": WEIGHTS_FORMAT}
    atomic_write_json(run.supernet_dir / SPACE_FILE, sidecar)
    return path


def read_weights_metadata(path: Path) -> dict[str, Any]:
    """The space spec and training config stored beside the weights."""
    if not path.is_file():
        raise ArtifactError(
            f"no trained supernet at {path}; train one with `nas train-supernet --run NAME`"
        )
    metadata = tensors_metadata(path, SUPERNET_WEIGHTS)
    if metadata.get("format") != WEIGHTS_FORMAT or "space" not in metadata:
        raise IncompatibleArtifactError(
            f"{path}: expected metadata format '{WEIGHTS_FORMAT}' with a space spec, "
            f"got format {metadata.get('format')!r}; re-run `nas train-supernet`"
        )
    try:
        meta = {"space": parse_json(metadata["space"]),
                "train_config": parse_json(metadata.get("train_config", "{}"))}
        if "few_shot" in metadata:
            meta["few_shot"] = parse_json(metadata["few_shot"])
    except ValueError:
        raise damaged(path, "its metadata is not JSON", SUPERNET_METADATA) from None
    return dict(check_shape(meta, path, SUPERNET_METADATA))


def load_trained_supernet(run: RunLayout, device: str | torch.device = "cpu") -> Supernet:
    """The trained supernet of `run`, rebuilt from its space spec, on `device`, in eval mode.

    Raises:
        ArtifactError: the run has no `supernet/weights.safetensors`.
        IncompatibleArtifactError: the weights were made for another space version or layout.
    """
    path = weights_path(run)
    return load_weights(path, read_weights_metadata(path), device=device)


def load_weights(path: Path, meta: dict[str, Any], *, device: str | torch.device) -> Supernet:
    """The supernet of weights file `path`, whose metadata `read_weights_metadata` gave `meta`.

    Raises:
        IncompatibleArtifactError: the weights were made for another space version or layout.
    """
    from search_spaces import space_from_spec

    space = space_from_spec(meta["space"], source=str(path))
    net = split_supernet(space.build_supernet(), meta.get("few_shot"))
    state = load_tensors(path, SUPERNET_WEIGHTS)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise IncompatibleArtifactError(
            f"{path}: weights do not fit space '{meta['space'].get('name')}' ({first[0].strip()})"
        ) from None
    return net.to(device).eval()
