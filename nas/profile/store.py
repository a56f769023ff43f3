"""Where profiles and predictors live, and how their records look.

With a run (`--run NAME`):

    runs/NAME/profile/<device>/latency.jsonl     one measured subnet per line
    runs/NAME/profile/<device>/blocks.jsonl      one measured block per line
    runs/NAME/profile/<device>/repeats.jsonl     second measurements (noise floor)
    runs/NAME/profile/<device>/profile.json      settings, fingerprint, timings of the session
    runs/NAME/predictor/<device>/...             see `predictors.io`

Without a run (`--space SPACE`), the same tree sits in `runs/_profiles/<space>-<side>px-<device>/`
(both layouts come from `nas.artifacts.RunLayout`).
A subnet record is `{"arch", "arch_id", "latency_ms", "q1_ms", "q3_ms", "n", "setup"}`; imported
records may carry only `arch` and `latency_ms`. `setup` (device, batch size, threads) keeps
measurements taken with other settings from being mixed when a profile is resumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.artifact_kinds import BLOCK_RECORD, LATENCY_RECORD
from nas.artifacts import RunLayout, append_jsonl, read_jsonl, standalone_profile

LATENCY = "latency.jsonl"
BLOCKS = "blocks.jsonl"
REPEATS = "repeats.jsonl"
PROFILE = "profile.json"
REPORT = "report.json"
REFERENCE = "reference.json"
_RECORDS = {LATENCY: LATENCY_RECORD, BLOCKS: BLOCK_RECORD, REPEATS: LATENCY_RECORD}

@dataclass(frozen=True)
class ProfileStore:
    """Paths of one device's profile and predictors under `root` (a run folder or standalone).

    Args:
        root: the run folder, or a standalone profile folder.
        device: the device name the measurements belong to.
    """

    root: Path
    device: str

    @property
    def profile_dir(self) -> Path:
        return RunLayout(self.root).profile_dir(self.device)

    @property
    def predictor_dir(self) -> Path:
        return RunLayout(self.root).predictor_dir(self.device)

    @property
    def latency_path(self) -> Path:
        return self.profile_dir / LATENCY

    @property
    def blocks_path(self) -> Path:
        return self.profile_dir / BLOCKS

    @property
    def repeats_path(self) -> Path:
        return self.profile_dir / REPEATS

    def append(self, path: Path, record: Mapping[str, Any]) -> None:
        append_jsonl(path, record)

    def records(self, path: Path, setup: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records of `path`, only those taken with `setup` when given."""
        out = list(read_jsonl(path, _RECORDS.get(path.name, LATENCY_RECORD)))
        if setup is not None:
            out = [r for r in out if r.get("setup") == dict(setup)]
        return out

    def clear(self) -> None:
        """Forget earlier measurements of this device (a fresh profile)."""
        for path in (self.latency_path, self.blocks_path, self.repeats_path,
                     self.profile_dir / REFERENCE):
            path.unlink(missing_ok=True)


def open_target(
    runs_dir: Path, *, run: str | None, space: str | None, num_classes: int | None,
    image_size: int | None, device: str, options: Sequence[str] | None = None,
) -> tuple[Any, ProfileStore]:
    """The search space and the store of a profile, from `--run` or from `--space`.

    With a run, the space is rebuilt from the run's manifest (trained weights are not needed:
    latency does not depend on weight values). Without one, the space is built from its name,
    class count, image size and `options` (`KEY=VALUE` texts), and the store is
    `runs/_profiles/<space>[-KEY=VALUE...]-<side>px-<device>/` (the side and the options are
    part of the name because predictors are specific to the network they were measured on).
    """
    from nas.artifacts import RunDir
    from nas.errors import ArtifactError, ConfigError
    from search_spaces import create_space, parse_space_options, space_from_spec

    if (run is None) == (space is None):
        raise ConfigError("expected exactly one of --run NAME or --space SPACE, got "
                          + ("both" if run else "neither"))
    kwargs = parse_space_options(options or ())
    if run is not None and kwargs:
        raise ConfigError("--space-option goes with --space; a run's space comes from its "
                          "manifest")
    if run is not None:
        run_dir = RunDir(runs_dir, run).require()
        spec = run_dir.manifest().get("space")
        if not isinstance(spec, dict):
            raise ArtifactError(
                f"{run_dir.manifest_path}: no search space recorded; train the run first "
                "(`nas train-supernet --run NAME`) or profile with --space SPACE"
            )
        return space_from_spec(spec, source=str(run_dir.manifest_path)), ProfileStore(
            run_dir.path, device
        )
    assert space is not None
    try:
        built = create_space(space, num_classes=num_classes, image_size=image_size, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"--space-option: {space} does not take {sorted(kwargs)} ({exc})") \
            from None
    return built, ProfileStore(standalone_root(runs_dir, space, built, device, kwargs), device)


def standalone_root(
    runs_dir: Path, name: str, space: Any, device: str, options: Mapping[str, Any] | None = None
) -> Path:
    """The folder of a profile made with `--space` (no run), at the space's largest side."""
    side = max(space.input_sizes())
    return standalone_profile(runs_dir, name, side=int(side), device=device, options=options).path
