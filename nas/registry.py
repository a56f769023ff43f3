"""A tiny name -> object registry filled by decorators at import time (timm style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from nas.errors import NasError, closest_hint

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes or factories) of one kind.

    Args:
        kind: what the registry holds, used in error messages ("search space").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under `name`; duplicates are an error."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise NasError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the entry called `name`, or raise `NasError` listing the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            valid = self.names()
            raise NasError(
                f"unknown {self.kind} '{name}'{closest_hint(name, valid)} "
                f"(expected one of: {', '.join(valid)})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
