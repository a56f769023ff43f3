"""Start a run from a supernet trained elsewhere: Once-for-All's released checkpoints.

`import_ofa_supernet` reads OFA's file without unpickling code (`weights_only=True`), maps it
onto the space's supernet (the space's `ofa_weights` module declares the map), checks that every
tensor is used and every shape matches, records the source in the manifest and writes the run's
`supernet/weights.safetensors` as training does. `nas eval`, `profile`, `search`, `export` and
`finetune` then use the run like a trained one; they evaluate on the dataset recorded here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nas.artifacts import RunDir, file_sha256
from nas.errors import ArtifactError, ConfigError, IncompatibleArtifactError
from nas.locks import stage_lock
from nas.supernet import Supernet
from nas.supernet.weights import SUPERNET_LOCK, save_weights
from search_spaces import create_space
from search_spaces.ofa_keymap import OFAKeyMap

STAGE = "import-supernet"
OFA_RESOLUTIONS = (128, 160, 192, 224)  # OFA trained and evaluated at these (elastic 128-224)
WIDTH_KEYS = ("width_mult", "width_scale")  # each space's name for its width argument


@dataclass(frozen=True)
class OFANetwork:
    """One OFA network class and the space that mirrors it."""

    space: str
    ofa_class: str
    marker: str  # key prefix that only this class's checkpoints have
    key_map: Callable[[], OFAKeyMap]
    space_kwargs: Callable[..., dict[str, Any]]  # our space's sizes, read from OFA's tensors
    ofa_kwargs: Callable[[Any], dict[str, Any]]  # OFA's constructor arguments for our space


def ofa_network(space: str) -> OFANetwork:
    """The OFA class behind `space` (`ofa-mbv3` or `ofa-resnet50`)."""
    if space == "ofa-mbv3":
        from search_spaces.ofa_mbv3 import ofa_weights as mbv3

        return OFANetwork(space, mbv3.OFA_CLASS, "final_expand_layer.", mbv3.ofa_key_map,
                          mbv3.space_kwargs, mbv3.ofa_kwargs)
    if space == "ofa-resnet50":
        from search_spaces.ofa_resnet50 import ofa_weights as resnet

        return OFANetwork(space, resnet.OFA_CLASS, "input_stem.", resnet.ofa_key_map,
                          resnet.space_kwargs, resnet.ofa_kwargs)
    raise ConfigError(f"--space: expected ofa-mbv3 or ofa-resnet50 for an OFA file, got '{space}'")


@dataclass(frozen=True)
class ImportSummary:
    """What the command shows (and what the manifest records)."""

    run: str
    space: dict[str, Any]  # the space spec written beside the weights
    source: dict[str, Any]  # file, path, sha256, bytes, format, network
    tensors: int
    params: int
    weights: Path

    def as_dict(self) -> dict[str, Any]:
        return {"space": self.space, "source": self.source, "tensors": self.tensors,
                "params": self.params, "weights": str(self.weights)}


def read_ofa_state(path: Path) -> dict[str, Tensor]:
    """The state dict of an OFA file: `{"state_dict": ...}` (as OFA saves) or a bare one.

    Raises:
        ArtifactError: no such file, or not a PyTorch file of plain tensors and types.
        IncompatibleArtifactError: a PyTorch file that holds no state dict.
    """
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; pass the path of a downloaded OFA checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or torn files
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise ArtifactError(
                f"{path}: holds Python objects ({found.group(1)}) besides tensors and plain "
                "values, which are not unpickled here; if you trust its source, keep only "
                "the weights: python -c "
                f"\"import torch; torch.save({{'state_dict': torch.load('{path}', "
                f"weights_only=False)['state_dict']}}, '{path}.weights')\""
            ) from None
        raise ArtifactError(
            f"{path}: not readable as a PyTorch file ({type(exc).__name__}); expected a "
            "checkpoint saved with torch.save"
        ) from None
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not state or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        got = sorted(map(str, obj))[:5] if isinstance(obj, Mapping) else type(obj).__name__
        raise IncompatibleArtifactError(
            f"{path}: expected {{'state_dict': {{name: tensor}}}} or a state dict of tensors, "
            f"got {got}"
        )
    return dict(state)


def detect_space(state: Mapping[str, Tensor], *, source: str) -> str:
    """`ofa-mbv3` or `ofa-resnet50`, from the module names in an OFA state dict."""
    for space in ("ofa-mbv3", "ofa-resnet50"):
        marker = ofa_network(space).marker
        if any(key.removeprefix("module.").startswith(marker) for key in state):
            return space
    raise IncompatibleArtifactError(
        f"{source}: no tensor of OFAMobileNetV3 (final_expand_layer.*) or OFAResNets "
        "(input_stem.*); only those two OFA networks can be imported (not OFAProxylessNASNets)"
    )


def ofa_supernet(
    state: Mapping[str, Tensor],
    *,
    space: str | None = None,
    width_mult: float | None = None,
    resolutions: Sequence[int] = OFA_RESOLUTIONS,
    source: str = "checkpoint",
) -> Supernet:
    """Our supernet holding the weights of OFA's `state` (BN statistics included), in eval mode.

    Args:
        state: OFA's state dict (any key naming OFA's own loader accepts).
        space: `ofa-mbv3` or `ofa-resnet50`; None detects it from the key names.
        width_mult: ofa-mbv3's width multiplier (1.0 or 1.2) or ofa-resnet50's `width_scale`;
            None reads it from the tensor shapes.
        resolutions: the input sides the space offers.
        source: names the file in messages.

    Raises:
        IncompatibleArtifactError: a tensor unused or missing, or a shape that differs.
    """
    name = space or detect_space(state, source=source)
    network = ofa_network(name)
    key_map = network.key_map()
    state = key_map.canonical(state)
    kwargs = network.space_kwargs(state, width_mult=width_mult, source=source)
    built = create_space(name, resolutions=list(resolutions), small_input=False, **kwargs)
    net = built.build_supernet()
    sizes = ", ".join(f"{key} {value}" for key, value in kwargs.items())
    what = f"space '{name}' ({sizes})"
    net.load_state_dict(key_map.from_ofa(state, net.state_dict(), source=source, what=what))
    return net.eval()


def supernet_to_ofa(net: Supernet) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """OFA's state dict of our supernet (inverse of `ofa_supernet`) and the arguments of the
    OFA class that holds it: `OFAMobileNetV3(**kwargs).load_state_dict(state)` (or
    `OFAResNets`) then computes what our supernet computes. OFA saves `{"state_dict": state}`.

    Raises:
        ConfigError: the space has no OFA counterpart (another space, small-input strides,
            not 3 image channels).
    """
    network = ofa_network(net.space.name)
    kwargs = network.ofa_kwargs(net.space)
    return network.key_map().to_ofa(net.state_dict()), kwargs


def _width(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The space's width argument (`width_mult` of ofa-mbv3, `width_scale` of ofa-resnet50)."""
    kwargs = spec.get("kwargs") or {}
    return {key: kwargs[key] for key in WIDTH_KEYS if key in kwargs}


def describe_source(source: Mapping[str, Any]) -> str:
    """One line saying where imported weights came from (a run's manifest `source`, or the
    `imported_from` of its weights): file, OFA class, sha256 prefix, space and width."""
    details = [str(source.get("network") or source.get("format") or "unknown format")]
    if source.get("sha256"):
        details.append(f"sha256 {str(source['sha256'])[:12]}")
    if source.get("space"):
        details.append(f"space {source['space']}")
    details += [f"{key} {source[key]}" for key in WIDTH_KEYS if key in source]
    return f"imported from {source.get('file', '?')} ({', '.join(details)})"


def check_dataset(name: str) -> None:
    """Refuse an unknown dataset name now, not in a later stage."""
    from nas.data import DATASETS, loaders  # noqa: F401  (loaders registers the datasets)

    DATASETS.get(name)


def _check_fresh(run: RunDir) -> None:
    folder = run.supernet_dir
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(
            f"run '{run.name}' already has a supernet ({folder}); import into another --run"
        )


def _data_folder(data_dir: Path | None) -> str | None:
    """Absolute, so that later stages find it from any working directory."""
    if data_dir is None:
        return None
    if not data_dir.is_dir():
        raise ConfigError(f"--data-dir: {data_dir} is not a folder; pass the dataset's folder")
    return str(data_dir.resolve())


def import_ofa_supernet(
    path: Path,
    run: RunDir,
    *,
    space: str | None = None,
    width_mult: float | None = None,
    resolutions: Sequence[int] = OFA_RESOLUTIONS,
    dataset: str = "imagefolder",
    data_dir: Path | None = None,
    argv: list[str] | None = None,
    wait: bool = False,
) -> ImportSummary:
    """Import OFA's checkpoint at `path` as the supernet of a new run `run`.

    Args:
        path: OFA's file (`ofa_mbv3_d234_e346_k357_w1.0`, ...).
        run: the run to create; it must not have a supernet yet.
        space, width_mult, resolutions: see `ofa_supernet`.
        dataset, data_dir: the data later stages evaluate and recalibrate on (recorded, not
            read here): an ImageNet-like `imagefolder` for OFA's ImageNet checkpoints.
        argv: the command line, for the manifest.

    Raises:
        ConfigError: the run already has a supernet.
        ArtifactError: the file is missing or unreadable.
        IncompatibleArtifactError: the file does not fit the space (names the first tensor).
    """
    with stage_lock(run.path, SUPERNET_LOCK, wait=wait, hint="or import into another --run"):
        return _import(path, run, space, width_mult, resolutions, dataset, data_dir, argv)


def _import(
    path: Path, run: RunDir, space: str | None, width_mult: float | None,
    resolutions: Sequence[int], dataset: str, data_dir: Path | None, argv: list[str] | None,
) -> ImportSummary:
    _check_fresh(run)
    check_dataset(dataset)
    data_folder = _data_folder(data_dir)
    source = str(path)
    net = ofa_supernet(read_ofa_state(path), space=space, width_mult=width_mult,
                       resolutions=resolutions, source=source)
    spec = net.space.spec()
    origin = {
        "format": "ofa", "network": ofa_network(net.space.name).ofa_class, "file": path.name,
        "path": str(path.resolve()), "sha256": file_sha256(path), "bytes": path.stat().st_size,
        "space": net.space.name, **_width(spec),
    }
    # what nas eval / search / export / finetune read from a run's weights
    data_config = {
        "dataset": dataset, "data_dir": data_folder,
        "image_size": max(resolutions), "resolutions": list(resolutions), "seed": 0,
        "imported_from": origin,
    }
    run.begin_stage(STAGE, config={"source": origin, "space": spec, **data_config},
                    device="cpu", argv=argv)
    run.update_manifest(space=spec, source=origin)
    weights = save_weights(run, net, space_spec=spec, train_config=data_config)
    summary = ImportSummary(run.name, spec, origin, len(net.state_dict()),
                            sum(p.numel() for p in net.parameters()), weights)
    run.end_stage(STAGE, summary=summary.as_dict())
    return summary


__all__ = [
    "OFA_RESOLUTIONS",
    "STAGE",
    "WIDTH_KEYS",
    "ImportSummary",
    "OFANetwork",
    "describe_source",
    "detect_space",
    "import_ofa_supernet",
    "ofa_network",
    "ofa_supernet",
    "read_ofa_state",
    "supernet_to_ofa",
]
