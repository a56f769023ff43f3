"""`nas export --format ofa` (the whole supernet in Once-for-All's format) and the checks of
`nas export` options that only one kind of export takes. Kept apart from `export.py` so that
command stays a thin parse-and-call."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nas.artifacts import RunDir
from nas.commands._common import console
from nas.errors import ConfigError

OFA_FORMAT = "ofa"


def wants_ofa(formats: str) -> bool:
    """True for `--format ofa`; `ofa` beside subnet formats is refused (different exports)."""
    names = [name.strip().lower() for name in formats.split(",") if name.strip()]
    if OFA_FORMAT in names and len(names) > 1:
        raise ConfigError(
            f"--format {formats}: 'ofa' writes the whole supernet, the others one subnet; "
            "run `nas export --format ofa` on its own"
        )
    return names == [OFA_FORMAT]


def calibration_batches(calib_batches: int | None, recalibrate: bool) -> int | None:
    """`--calib-batches` as export takes it: 0 with `--no-bn-recalibration` (keep the stored
    statistics, as OFA's `get_active_subnet(preserve_weight=True)` does)."""
    if recalibrate:
        return calib_batches
    if calib_batches not in (None, 0):
        raise ConfigError(
            f"--calib-batches {calib_batches} with --no-bn-recalibration: the first asks for "
            "recalibration, the second keeps the stored statistics; give one of them"
        )
    return 0


def export_ofa(
    run: RunDir, *, out: Path | None, subnet_options: dict[str, object], as_json: bool,
    argv: list[str],
) -> None:
    """Write the run's supernet as OFA's checkpoint and show where, and how to load it."""
    from nas.export.ofa_checkpoint import export_ofa_checkpoint

    given = [name for name, value in subnet_options.items() if value]
    if given:
        raise ConfigError(
            f"{given[0]}: --format ofa writes the whole supernet, so no subnet is picked or "
            "calibrated; drop the option"
        )
    result = export_ofa_checkpoint(run, out_dir=out, argv=argv)
    meta = result.meta
    if as_json:
        typer.echo(json.dumps({**meta, "out_dir": str(result.out_dir)}, indent=2,
                              sort_keys=True, default=str))
        return
    console.print(f"[bold]exported the supernet of run {run.name}[/bold] as Once-for-All's "
                  f"{meta['ofa_class']} checkpoint ({meta['tensors']} tensors)")
    console.print(f"  weights: {meta['weights_from']}", soft_wrap=True)
    console.print(f"  round trip: read back bit for bit equal ({meta['round_trip']['tensors']} "
                  f"tensors); sha256 {meta['sha256'][:12]}")
    console.print(f"wrote {result.file} (loading it with OFA: {result.out_dir / 'README.md'})",
                  soft_wrap=True)


__all__ = ["OFA_FORMAT", "calibration_batches", "export_ofa", "wants_ofa"]
