"""Names that become folder names (runs, search tags, devices, stages, space options), checked
in one place so that nothing a user types can reach outside its folder.

A name is one path component of letters, digits, `-`, `_` and `.`, not starting with a dot
(no `..`, no hidden files, no separators, no absolute paths), at most `MAX_LENGTH` long.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.errors import ConfigError

MAX_LENGTH = 100
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
# space options in a profile folder name may also hold these (`resolutions=160,192`)
_OPTION_CHARS = NAME_CHARS | frozenset("=,")
_OPTIONS_SHOWN = 40  # longer option texts become a hash in folder names


def check_name(name: str, what: str) -> str:
    """`name` when it is one safe path component, else `ConfigError` naming `what`.

    Args:
        name: the text typed (a run name, a --tag ...).
        what: how the user gave it, for the message ("run name", "--tag").
    """
    if (not isinstance(name, str) or not name or len(name) > MAX_LENGTH
            or not set(name) <= NAME_CHARS or name.startswith(".")):
        shown = repr(name) if isinstance(name, str) and len(name) <= 60 else "(too long)"
        raise ConfigError(
            f"{what}: expected a name of letters, digits, '-', '_' or '.' (not starting with "
            f"'.', at most {MAX_LENGTH} characters), got {shown}"
        )
    return name


def device_dirname(device: str) -> str:
    """A folder name for a device spec (`cuda:1` -> `cuda-1`); `..` and friends are refused."""
    if not isinstance(device, str):
        raise ConfigError(f"--device: expected a device name, got {device!r}")
    check_name(device.replace(":", "-").replace("/", "-"), f"--device {device!r}")
    return device.replace(":", "-").replace("/", "-")


def options_label(options: Mapping[str, Any]) -> str:
    """Space options as a short, safe folder-name part: `-init_channels=8`, `-resolutions=160,
    192`, or `-opts-<hash>` when the text would be long or hold other characters."""
    if not options:
        return ""

    def text(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ",".join(text(v) for v in value)
        return json.dumps(value) if not isinstance(value, str) else value

    label = "".join(f"-{key}={text(value)}" for key, value in sorted(options.items()))
    if len(label) <= _OPTIONS_SHOWN and set(label) <= _OPTION_CHARS:
        return label
    digest = hashlib.sha256(json.dumps(dict(options), sort_keys=True, default=str).encode())
    return f"-opts-{digest.hexdigest()[:10]}"


def check_relative_out(path: Path, what: str = "--out") -> Path:
    """A relative output folder must stay below the working folder (no `..` parts);
    an absolute one is the user's explicit choice."""
    if not path.is_absolute() and ".." in path.parts:
        raise ConfigError(
            f"{what} {path}: a relative folder must stay below the current folder (no '..'); "
            "give an absolute path to write elsewhere"
        )
    return path
