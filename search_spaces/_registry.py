"""The registry of search spaces (timm's `_registry.py`): spaces register here on import.

Space modules import `register_space` from this module, never from the `search_spaces`
package, so the package can import every built-in space without being imported back.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from nas.errors import ConfigError, IncompatibleArtifactError, NasError
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
    """`["init_channels=8", "resolutions=160,192"]` -> `{"init_channels": 8, "resolutions":
    [160, 192]}`: JSON values, comma-separated lists of them, else the text.

    Raises:
        ConfigError: not KEY=VALUE, a key that is no identifier, or NaN / Infinity.
    """
    parsed: dict[str, Any] = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--space-option: expected KEY=VALUE, got '{option}'")
        parsed[key.strip()] = _option_value(text.strip())
    return parsed


def _option_value(text: str) -> Any:
    def value(part: str) -> Any:
        try:
            return json.loads(part, parse_constant=_no_constant)
        except ValueError:
            return part

    if "," in text and not text.startswith(("[", "{", '"')):
        return [value(part.strip()) for part in text.split(",")]
    return value(text)


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: a space option never takes them."""
    raise ConfigError(f"--space-option: expected a finite number, got {name}")


def space_from_spec(spec: dict[str, Any], *, source: str = "artifact") -> SearchSpace:
    """Rebuild a space recorded by `SearchSpace.spec()`; refuses other encoding versions.

    A spec of the wrong shape, or options the space refuses, raise
    `IncompatibleArtifactError` naming `source` (a damaged file never crashes a command).
    """
    kwargs = spec.get("kwargs", {}) if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
            or not isinstance(kwargs, dict):
        raise IncompatibleArtifactError(
            f"{source}: expected a space spec {{'name', 'encoding_version', 'kwargs'}}, got "
            f"{str(spec)[:80]}; re-run the stage that made it"
        )
    cls = SPACES.get(spec["name"])
    if spec.get("encoding_version") != cls.encoding_version:
        raise IncompatibleArtifactError(
            f"{source}: space '{spec['name']}' has encoding version "
            f"{spec.get('encoding_version')}, "
            f"this nas expects {cls.encoding_version}; re-run the stage that made it"
        )
    try:
        return cls(**kwargs)
    except NasError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise IncompatibleArtifactError(
            f"{source}: space '{spec['name']}' refuses the recorded options {str(kwargs)[:80]}"
            f" ({type(exc).__name__}: {exc}); re-run the stage that made it"
        ) from None
