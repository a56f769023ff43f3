"""Shapes of JSON artifacts: small declarative checks that name the first value out of place.

A `Shape` checks a parsed JSON value and raises `ShapeError` with where the value sits
(`front[3].values.top1`) and what was expected, so that a reader can turn it into one line
naming the file. Shapes say only what a reader relies on: objects may hold more keys than
listed (files grow new fields), and every number must be finite (JSON has no NaN; Python's
parser accepts `NaN` and `Infinity` anyway).

    PICK = Obj({"front": ListOf(Obj({"arch": ANY}))}, optional={"device": Maybe(STRING)})
    PICK.check(data)   # raises ShapeError("front[0]: expected an object, got a list")
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any


class ShapeError(ValueError):
    """A value of the wrong shape at `where` (empty: the whole document)."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


def describe(value: Any) -> str:
    """What a value is, for messages ("a list", "the string 'x'", "NaN")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _at(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class Shape(abc.ABC):
    """One check of a JSON value; `expected` says what passes, for messages."""

    expected: str = "a value"

    @abc.abstractmethod
    def check(self, value: Any, where: str = "") -> None:
        """Raise `ShapeError` when `value` (found at `where`) does not have this shape."""

    def fail(self, value: Any, where: str) -> ShapeError:
        return ShapeError(where, f"expected {self.expected}, got {describe(value)}")


class _Any(Shape):
    expected = "a value"

    def check(self, value: Any, where: str = "") -> None:
        return None


class _Type(Shape):
    def __init__(self, kinds: tuple[type, ...], expected: str) -> None:
        self.kinds = kinds
        self.expected = expected

    def check(self, value: Any, where: str = "") -> None:
        if isinstance(value, bool) and bool not in self.kinds:
            raise self.fail(value, where)
        if not isinstance(value, self.kinds):
            raise self.fail(value, where)


class Number(Shape):
    """A finite int or float (not a boolean), optionally within `[low, high]`.

    `finite=False` also passes NaN and infinities: our own files record a metric that could
    not be computed as NaN and an unmet constraint as an infinite violation.
    """

    def __init__(self, *, low: float | None = None, high: float | None = None,
                 integer: bool = False, finite: bool = True) -> None:
        self.low, self.high, self.integer, self.finite = low, high, integer, finite
        kind = "an integer" if integer else "a finite number" if finite else "a number"
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        self.expected = " ".join([kind, " and ".join(b for b in bounds if b)]).strip()

    def check(self, value: Any, where: str = "") -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (self.integer and not isinstance(value, int))):
            raise self.fail(value, where)
        number = float(value)
        if self.finite and not math.isfinite(number):
            raise self.fail(value, where)
        if (self.low is not None and number < self.low) or (
                self.high is not None and number > self.high):
            raise self.fail(value, where)


class Maybe(Shape):
    """`null` or `inner`."""

    def __init__(self, inner: Shape) -> None:
        self.inner = inner
        self.expected = f"null or {inner.expected}"

    def check(self, value: Any, where: str = "") -> None:
        if value is not None:
            self.inner.check(value, where)


class OneOf(Shape):
    """Any of `shapes` (the first that passes)."""

    def __init__(self, *shapes: Shape) -> None:
        self.shapes = shapes
        self.expected = " or ".join(s.expected for s in shapes)

    def check(self, value: Any, where: str = "") -> None:
        errors = []
        for shape in self.shapes:
            try:
                shape.check(value, where)
                return
            except ShapeError as exc:
                errors.append(exc)
        # the alternative that got furthest into the value says best what is wrong
        deepest = max(errors, key=lambda e: (len(e.where), "expected a" not in e.message))
        if deepest.where != where or "expected a" not in deepest.message:
            raise deepest
        raise self.fail(value, where)


class ListOf(Shape):
    """A list whose every item has shape `item` (at most `max_len` items)."""

    def __init__(self, item: Shape, *, min_len: int = 0, max_len: int | None = None) -> None:
        self.item, self.min_len, self.max_len = item, min_len, max_len
        self.expected = "a list" if not min_len else f"a list of at least {min_len} items"

    def check(self, value: Any, where: str = "") -> None:
        if not isinstance(value, list) or len(value) < self.min_len:
            raise self.fail(value, where)
        if self.max_len is not None and len(value) > self.max_len:
            raise ShapeError(where, f"expected at most {self.max_len} items, got {len(value)}")
        for index, item in enumerate(value):
            self.item.check(item, _at(where, index))


class MapOf(Shape):
    """An object whose every value has shape `value` (keys are strings in JSON)."""

    def __init__(self, value: Shape) -> None:
        self.value = value
        self.expected = "an object"

    def check(self, value: Any, where: str = "") -> None:
        if not isinstance(value, Mapping):
            raise self.fail(value, where)
        for key, item in value.items():
            self.value.check(item, _at(where, str(key)))


class Obj(Shape):
    """An object with `required` keys and, when present, `optional` ones (more keys pass)."""

    def __init__(self, required: Mapping[str, Shape] | None = None, *,
                 optional: Mapping[str, Shape] | None = None) -> None:
        self.required = dict(required or {})
        self.optional = dict(optional or {})
        self.expected = "an object"

    def check(self, value: Any, where: str = "") -> None:
        if not isinstance(value, Mapping):
            raise self.fail(value, where)
        for key, shape in self.required.items():
            if key not in value:
                raise ShapeError(where, f"no '{key}' (got keys {sorted(map(str, value))[:8]})")
            shape.check(value[key], _at(where, key))
        for key, shape in self.optional.items():
            if key in value:
                shape.check(value[key], _at(where, key))


ANY: Shape = _Any()
STRING: Shape = _Type((str,), "a string")
BOOLEAN: Shape = _Type((bool,), "a boolean")
NUMBER: Shape = Number()
ANY_NUMBER: Shape = Number(finite=False)
INTEGER: Shape = Number(integer=True)
OBJECT: Shape = MapOf(ANY)
LIST: Shape = ListOf(ANY)
STRINGS: Shape = ListOf(STRING)
