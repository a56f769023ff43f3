"""Subnet configs ("archs"): plain JSON-serialisable dicts with a canonical form and a short id."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.errors import InvalidArchError

Arch = Mapping[str, Any]


def canonical_json(arch: Arch) -> str:
    """JSON with sorted keys and no spaces: equal archs give equal strings."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def arch_id(arch: Arch) -> str:
    """A 12-hex-digit id of an arch, stable across processes and machines."""
    return hashlib.sha1(canonical_json(arch).encode()).hexdigest()[:12]


def parse_arch_argument(text: str) -> Any:
    """Read a subnet config given on the command line as inline JSON or as a JSON file path.

    Returns the decoded JSON value; the search space then normalises and validates it.
    """
    stripped = text.strip()
    if stripped.startswith(("{", "[", '"')):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidArchError(
                f"expected a JSON subnet config, got invalid JSON ({exc.msg} at char {exc.pos})"
            ) from None
    path = Path(text)
    if not path.is_file():
        raise InvalidArchError(
            f"expected inline JSON or a path to a JSON file, got '{text}' (no such file)"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArchError(
            f"{path}: expected a JSON subnet config, got invalid JSON ({exc})"
        ) from None
