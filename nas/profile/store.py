"""Where profiles and predictors live, and how their records look.

With a run (`--run NAME`):

    runs/NAME/profile/<device>/latency.jsonl     one measured subnet per line
    runs/NAME/profile/<device>/blocks.jsonl      one measured block per line
    runs/NAME/profile/<device>/repeats.jsonl     second measurements (noise floor)
    runs/NAME/profile/<device>/profile.json      settings, fingerprint, timings of the session
    runs/NAME/predictor/<device>/...             see `predictors.io`

Without a run (`--space SPACE`), the same tree sits in `runs/_profiles/<space>-<device>/`.
A subnet record is `{"arch", "arch_id", "latency_ms", "q1_ms", "q3_ms", "n", "setup"}`; imported
records may carry only `arch` and `latency_ms`. `setup` (device, batch size, threads) keeps
measurements taken with other settings from being mixed when a profile is resumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.artifacts import append_jsonl, read_jsonl

LATENCY = "latency.jsonl"
BLOCKS = "blocks.jsonl"
REPEATS = "repeats.jsonl"
PROFILE = "profile.json"
REPORT = "report.json"
STANDALONE = "_profiles"


def device_dirname(device: str) -> str:
    """A folder name for a device spec (`cuda:1` -> `cuda-1`)."""
    return device.replace(":", "-").replace("/", "-")


def standalone_root(runs_dir: Path, space_name: str, device: str) -> Path:
    """The folder used for profiles made without a run."""
    return runs_dir / STANDALONE / f"{space_name}-{device_dirname(device)}"


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
        return self.root / "profile" / device_dirname(self.device)

    @property
    def predictor_dir(self) -> Path:
        return self.root / "predictor" / device_dirname(self.device)

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
        out = list(read_jsonl(path))
        if setup is not None:
            out = [r for r in out if r.get("setup") == dict(setup)]
        return out

    def clear(self) -> None:
        """Forget earlier measurements of this device (a fresh profile)."""
        for path in (self.latency_path, self.blocks_path, self.repeats_path):
            path.unlink(missing_ok=True)
