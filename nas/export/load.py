"""`load_exported(DIR)`: rebuild an exported static network from safetensors + arch.json.

Nothing is unpickled: the network is rebuilt from the recorded space spec and arch, and the
weights come from safetensors. The build recipe is recorded in `arch.json` under `builder`:

- `"extract_subnet"` (supernet spaces): `space_from_spec(spec).build_supernet()
  .extract_subnet(arch)`, whose structure is exactly what was exported;
- `"build_network"` (stand-alone networks such as a DARTS evaluation network):
  `space.build_network(arch, **builder_kwargs)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.export.deploy import STORED, DeployForm, deployable

EXPORT_FORMAT = "nas-export/1"


def build_static(meta: dict[str, Any]) -> nn.Module:
    """The exported network's structure (untrained weights) from an `arch.json` mapping."""
    from search_spaces import space_from_spec

    space = space_from_spec(meta["space"], source="arch.json")
    arch = space.normalize(meta["arch"])
    builder = meta.get("builder", "extract_subnet")
    if builder == "extract_subnet":
        return space.build_supernet().extract_subnet(arch)
    if builder == "build_network" and hasattr(space, "build_network"):
        network: nn.Module = space.build_network(arch, **meta.get("builder_kwargs", {}))
        return network
    raise IncompatibleArtifactError(
        f"arch.json: builder '{builder}' is not supported by space '{meta['space'].get('name')}' "
        "in this nas version (expected extract_subnet or build_network); upgrade nas"
    )


def recorded_form(meta: dict[str, Any], fmt: str = "pytorch") -> DeployForm:
    """The inference form the export chose for `fmt` (recorded in `arch.json` under `deploy`);
    the stored form for exports made before nas recorded one."""
    record = (meta.get("deploy") or {}).get(fmt)
    return DeployForm.from_dict(record) if isinstance(record, dict) else STORED


def load_exported(
    directory: str | Path,
    *,
    device: str = "cpu",
    fuse_bn: bool | None = None,
    channels_last: bool | None = None,
) -> nn.Module:
    """Load the `pytorch` format of an export folder as a plain `nn.Module` in eval mode.

    By default the network comes in the form the export checked and chose as the fastest that
    still matches the supernet within the parity limit (recorded in `arch.json` under
    `deploy.pytorch` and in the model card): BN folded into the convs, identity modules dropped
    and channels-last layout. `fuse_bn=False` gives the network as stored, with its batch
    norms, which is what fine-tuning needs.

    Args:
        directory: a folder written by `nas export` (holding `arch.json` and
            `weights.safetensors`).
        device: where to put the module.
        fuse_bn: fold BN into the convs (inference only); None: as recorded at export.
        channels_last: NHWC weights and inputs; None: as recorded when `fuse_bn` is None,
            else the same as `fuse_bn` (the inference form goes together).

    Raises:
        ArtifactError: files are missing (export with `--format pytorch`).
        IncompatibleArtifactError: the weights do not fit the recorded architecture.
    """
    from safetensors.torch import load_file

    from nas.export.formats import WEIGHTS_FILE, read_arch_json

    folder = Path(directory)
    meta = read_arch_json(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(
            f"{weights} does not exist; this export has no pytorch format "
            "(re-run `nas export ... --format pytorch`)"
        )
    model = build_static(meta)
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as exc:
        detail = (str(exc).splitlines()[1:2] or [str(exc)])[0].strip()
        raise IncompatibleArtifactError(
            f"{weights}: weights do not fit the architecture in arch.json ({detail})"
        ) from None
    recorded = recorded_form(meta)
    fold = recorded.fuse_bn if fuse_bn is None else fuse_bn
    if channels_last is None:
        channels_last = recorded.channels_last if fuse_bn is None else fold
    form = DeployForm(fuse_bn=fold, channels_last=channels_last)
    if form != STORED:
        model = deployable(model, form)
    return model.to(device).eval()
