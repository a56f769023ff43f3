"""Command configs: frozen dataclasses filled from defaults < config file < command-line flags.

Config files are TOML or YAML mappings whose keys are the dataclass fields (dashes or
underscores). Unknown keys are an error naming the closest valid key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from nas.errors import ConfigError, closest_hint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

C = TypeVar("C")


def read_user_text(path: Path, *, what: str, hint: str,
                   error: type[Exception] = ConfigError) -> str:
    """The text of a file the user passed (`what`, e.g. "config file"); a missing, unreadable
    or non-UTF-8 file raises `error` naming it (`hint`: what to pass instead)."""
    if not path.is_file():
        raise error(f"{what} {path} does not exist; {hint}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                    f"{exc.start}); save it as UTF-8") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (`.toml`) or YAML (`.yaml`/`.yml`/other) mapping from `path`."""
    text = read_user_text(path, what="config file", hint="pass a TOML or YAML file")
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # the parsers raise many types; all mean "malformed file"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {path} could not be parsed: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of options, got {type(data).__name__}"
        )
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def check_keys(keys: Mapping[str, Any], cls: type[Any], *, source: str) -> None:
    """Raise `ConfigError` for the first key that is not a field of dataclass `cls`."""
    valid = [field.name for field in dataclasses.fields(cls)]
    for key in keys:
        if key not in valid:
            raise ConfigError(
                f"{source}: unknown option '{key}'{closest_hint(key, valid)} "
                f"(valid: {', '.join(valid)})"
            )


def build_config(
    cls: type[C],
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> C:
    """Make a `cls` from its defaults, then the config file, then `overrides` (flags win).

    Args:
        cls: a dataclass type.
        config_file: optional TOML/YAML file of option values.
        overrides: values given explicitly on the command line.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        from_file = read_config_file(config_file)
        check_keys(from_file, cls, source=str(config_file))
        values.update(from_file)
    if overrides:
        check_keys(overrides, cls, source="command line")
        values.update(overrides)
    for key, value in values.items():
        check_value(cls, key, value)
    try:
        config = cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid options: {exc}") from None
    check_finite(config)
    return config


def check_number(value: Any, name: str) -> None:
    """`ConfigError` when `value` (or a number inside a list of it) is NaN or infinite.

    The one check of every float a user gives: options typed on the command line (the CLI
    applies it to every float option), config files and config dataclasses (`check_finite`).
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{_flag(name)}: expected a finite number, got {value}")
    if isinstance(value, (list, tuple)):
        for item in value:
            check_number(item, name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_number(item, f"{name}.{key}")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        check_finite(value)


def check_finite(config: Any) -> None:
    """`check_number` on every field of a config dataclass."""
    for field in dataclasses.fields(config):
        check_number(getattr(config, field.name), field.name)


_SIMPLE = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def check_value(cls: type[Any], key: str, value: Any) -> None:
    """`ConfigError` when `value` has not the type of field `key` of `cls` (simple types
    only: int, float, str, bool, optionally None; others are checked by the dataclass)."""
    hint = _field_types(cls).get(key)
    if hint is None:
        return
    allowed = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    if value is None and type(None) in (typing.get_args(hint) or (hint,)):
        return
    if not allowed or not all(t in _SIMPLE for t in allowed):
        return
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = any(isinstance(value, t) or (t is float and isinstance(value, int))
                 for t in allowed)
    if not ok:
        expected = " or ".join(_SIMPLE[t] for t in allowed)
        raise ConfigError(f"{_flag(key)}: expected {expected}, got {value!r}")


def _field_types(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # annotations this Python cannot resolve: no type check
        return {}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-able dict of a config dataclass (paths as strings, tuples as lists)."""
    raw = dataclasses.asdict(config)
    resolved: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return resolved


def differing_keys(
    saved: Mapping[str, Any], current: Mapping[str, Any], keys: Sequence[str]
) -> list[str]:
    """Those of `keys` whose values differ between two `config_to_dict` dicts (a key missing
    from one side counts as None, so options added later compare equal to their default)."""
    return [key for key in keys if saved.get(key) != current.get(key)]


def read_user_jsonl(
    path: Path, *, what: str, error: type[Exception] = ConfigError
) -> list[tuple[int, Any]]:
    """`(line number, value)` of each non-blank line of a user's JSONL file.

    A missing file or a malformed line raises `error` naming the file (and the line).
    """
    text = read_user_text(path, what=what, hint="pass a JSONL file", error=error)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise error(f"{path} line {number}: invalid JSON ({exc.msg})") from None
    return rows
