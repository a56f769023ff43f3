"""The registry of search spaces (timm's `_registry.py`): spaces register here on import.

Space modules import `register_space` from this module, never from the `search_spaces`
package, so the package can import every built-in space without being imported back.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from nas.errors import ConfigError, IncompatibleArtifactError
from nas.registry import Registry
from search_spaces.base import SearchSpace

SPACES: Registry[type[SearchSpace]] = Registry("search space")
register_space = SPACES.register


def builtin_space_names() -> list[str]:
    """Names of the spaces this package ships (tests may register toy spaces beside them)."""
    return [n for n in SPACES.names() if SPACES.get(n).__module__.startswith("search_spaces.")]


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build the space `name`; kwargs that are None are dropped so spaces keep their defaults."""
    cls = SPACES.get(name)
    return cls(**{k: v for k, v in kwargs.items() if v is not None})


def create_sized_space(
    name: str, *, num_classes: int, in_channels: int, image_size: int,
    options: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """The space `name` sized for a dataset, with the user's `--space-option`s on top.

    Raises:
        ConfigError: an option the space does not take.
    """
    sizes = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    try:
        return create_space(name, **{**sizes, **(options or {})})
    except TypeError as exc:
        raise ConfigError(
            f"--space-option: {name} does not take {sorted(options or {})} ({exc})"
        ) from None


def create_offered_space(
    name: str, offered: Mapping[str, Any], options: Mapping[str, Any] | None = None
) -> SearchSpace:
    """The space `name` from the `offered` arguments its constructor takes (others are
    dropped: not every space has elastic resolution or an input-channel count), with the user's
    `--space-option`s on top.

    Raises:
        ConfigError: an option the space does not take.
    """
    accepted = inspect.signature(SPACES.get(name).__init__).parameters
    unknown = sorted(set(options or {}) - set(accepted) - {"self"})
    if unknown:
        valid = sorted(k for k in accepted if k not in ("self", "kwargs"))
        raise ConfigError(f"--space-option: space '{name}' takes no {', '.join(unknown)} "
                          f"(expected one of: {', '.join(valid)})")
    kwargs = {k: v for k, v in offered.items() if k in accepted and v is not None}
    return create_space(name, **{**kwargs, **(options or {})})


def parse_space_options(options: Sequence[str]) -> dict[str, Any]:
    """`["init_channels=8", "layers=5"]` -> `{"init_channels": 8, "layers": 5}` (JSON values,
    else the text)."""
    parsed: dict[str, Any] = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--space-option: expected KEY=VALUE, got '{option}'")
        try:
            parsed[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key.strip()] = text
    return parsed


def space_from_spec(spec: dict[str, Any], *, source: str = "artifact") -> SearchSpace:
    """Rebuild a space recorded by `SearchSpace.spec()`; refuses other encoding versions."""
    cls = SPACES.get(spec["name"])
    if spec.get("encoding_version") != cls.encoding_version:
        raise IncompatibleArtifactError(
            f"{source}: space '{spec['name']}' has encoding version "
            f"{spec.get('encoding_version')}, "
            f"this nas expects {cls.encoding_version}; re-run the stage that made it"
        )
    return cls(**spec.get("kwargs", {}))

