"""DARTS genotypes: parsing the forms users already have, and the published cells.

A genotype is the DARTS repository's description of a normal and a reduction cell: for each of
the 4 intermediate nodes, two incoming edges `(op, input)` where input 0 and 1 are the two
previous cells' outputs and input `i + 2` is intermediate node `i`. The canonical form here is
JSON: `{"normal": [[op, input], ...8], "normal_concat": [2, 3, 4, 5], "reduce": [...],
"reduce_concat": [2, 3, 4, 5]}`.

Accepted inputs: the canonical dict, the same with tuples, a 4-list `[normal, normal_concat,
reduce, reduce_concat]`, the repository's printed form
`Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)` (parsed with
`ast`, never evaluated), or the name of a published genotype (`DARTS_V2`, `PC_DARTS`, ...).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import InvalidArchError

PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# Ops a derived genotype may contain: DARTS never picks `none` for a kept edge.
CELL_OPS = PRIMITIVES[1:]
STEPS = 4  # intermediate nodes per cell
CONCAT = (2, 3, 4, 5)
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
MAX_CONCAT = 64  # bounds on parsed genotype text: nodes of a concat, and characters
MAX_TEXT = 20_000

Edge = tuple[str, int]

# Published cells, transcribed from the papers' repositories (genotypes.py of quark0/darts and
# yuhuixu1993/PC-DARTS). DARTS_V1 is first-order DARTS, DARTS_V2 second order (the paper's).
_PUBLISHED_TEXT: dict[str, tuple[list[Edge], list[Edge]]] = {
    "DARTS_V1": (
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    ),
    "DARTS_V2": (
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    ),
    "PC_DARTS_CIFAR": (
        [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
         ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
        [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
         ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
    ),
    "PC_DARTS_IMAGE": (
        [("skip_connect", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("dil_conv_5x5", 4)],
        [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 2), ("max_pool_3x3", 1),
         ("sep_conv_3x3", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 3)],
    ),
}
# Names used by the repositories for the same cells.
_ALIASES = {"DARTS": "DARTS_V2", "PC_DARTS": "PC_DARTS_CIFAR", "PCDARTS": "PC_DARTS_CIFAR"}


def published_names() -> list[str]:
    """Names accepted by `named_genotype`, aliases included."""
    return sorted([*_PUBLISHED_TEXT, *_ALIASES])


def named_genotype(name: str) -> dict[str, Any] | None:
    """The canonical dict of a published genotype (case-insensitive name), or None."""
    key = name.strip().upper().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _PUBLISHED_TEXT:
        return None
    normal, reduce = _PUBLISHED_TEXT[key]
    return {
        "normal": [[op, index] for op, index in normal],
        "normal_concat": list(CONCAT),
        "reduce": [[op, index] for op, index in reduce],
        "reduce_concat": list(CONCAT),
    }


def _literal(node: ast.expr, field: str) -> Any:
    """A literal value, also allowing `range(a, b)` (the repository's concat spelling)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
    ):
        try:
            bounds = [ast.literal_eval(arg) for arg in node.args]
        except (ValueError, TypeError, SyntaxError):
            bounds = []
        if not all(isinstance(b, int) for b in bounds) or not 1 <= len(bounds) <= 2:
            raise InvalidArchError(
                f"{field}: expected range(start, stop) of integers, got {ast.unparse(node)[:80]}"
            )
        span = range(*bounds)
        # a cell has a handful of nodes: never materialise a hostile range(0, 10**10)
        if len(span) > MAX_CONCAT or not all(0 <= b <= MAX_CONCAT + 2 for b in (*bounds, 0)):
            raise InvalidArchError(
                f"{field}: expected a range of node indices (at most {MAX_CONCAT} nodes), got "
                f"{ast.unparse(node)[:80]}"
            )
        return list(span)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise InvalidArchError(
            f"{field}: expected a literal list like [('sep_conv_3x3', 0), ...], "
            f"got {ast.unparse(node)}"
        ) from None


def parse_genotype_string(text: str) -> dict[str, Any]:
    """Parse `Genotype(normal=[...], normal_concat=range(2, 6), ...)` without evaluating it.

    Returns a raw dict with the four fields (still to be validated by the space).
    """
    if len(text) > MAX_TEXT:
        raise InvalidArchError(f"expected a genotype of at most {MAX_TEXT} characters, got "
                               f"{len(text)}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        raise InvalidArchError(
            f"expected a genotype like Genotype(normal=[('sep_conv_3x3', 0), ...], ...), "
            f"got text that does not parse ({getattr(exc, 'msg', type(exc).__name__)})"
        ) from None
    call = tree.body
    if not isinstance(call, ast.Call) or not (
        isinstance(call.func, ast.Name) and call.func.id == "Genotype"
    ):
        raise InvalidArchError(
            "expected a genotype string starting with 'Genotype(', got other text"
        )
    if len(call.args) > len(FIELDS):
        raise InvalidArchError(f"Genotype(...): expected at most 4 fields, got {len(call.args)}")
    raw: dict[str, Any] = {}
    for field, arg in zip(FIELDS, call.args, strict=False):
        raw[field] = _literal(arg, field)
    for keyword in call.keywords:
        if keyword.arg not in FIELDS:
            raise InvalidArchError(
                f"Genotype(...): unknown field '{keyword.arg}' (expected {', '.join(FIELDS)})"
            )
        raw[keyword.arg] = _literal(keyword.value, keyword.arg)
    return raw


def raw_genotype(obj: Any) -> dict[str, Any]:
    """Turn any accepted input into a dict with the four fields (not yet validated)."""
    if isinstance(obj, str):
        text = obj.strip()
        named = named_genotype(text)
        if named is not None:
            return named
        if text.startswith("Genotype"):
            return parse_genotype_string(text)
        if text.startswith(("{", "[")):
            try:
                return raw_genotype(json.loads(text))
            except json.JSONDecodeError as exc:
                raise InvalidArchError(
                    f"expected a JSON genotype, got invalid JSON ({exc.msg})"
                ) from None
        raise InvalidArchError(
            "expected a genotype (JSON, Genotype(...) text or one of "
            f"{', '.join(published_names())}), got '{text[:60]}'"
        )
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "_asdict"):  # a Genotype namedtuple passed from Python
        return dict(obj._asdict())
    if isinstance(obj, Sequence) and len(obj) == len(FIELDS):
        return dict(zip(FIELDS, obj, strict=True))
    raise InvalidArchError(
        f"expected a genotype dict with keys {', '.join(FIELDS)}, got {type(obj).__name__}"
    )


def load_genotype_argument(text: str) -> Any:
    """A genotype given on the command line: a published name, a file, or inline text.

    Files may hold JSON (canonical, or the `{"genotype": ...}` / `{"subnet": ...}` wrappers a
    search run writes in `supernet/summary.json` / `arch.json`) or the repository's
    `Genotype(...)` text.
    """
    if named_genotype(text) is not None:
        return text
    path = Path(text)
    if path.is_file():
        if path.stat().st_size > 1 << 20:
            raise InvalidArchError(f"{path}: expected a genotype file, got over 1 MB")
        try:
            content = path.read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArchError(f"{path}: expected a genotype as UTF-8 text ({exc})") from None
        if content.startswith(("{", "[")):
            try:
                data = json.loads(content)
            except json.JSONDecodeError as exc:
                raise InvalidArchError(
                    f"{path}: expected a JSON genotype, got invalid JSON ({exc.msg})"
                ) from None
            for key in ("genotype", "subnet"):
                if isinstance(data, dict) and key in data:
                    return data[key]
            return data
        return content
    if text.strip().startswith(("{", "[", "Genotype")):
        return text
    raise InvalidArchError(
        f"expected a genotype file, inline JSON/Genotype(...) text or one of "
        f"{', '.join(published_names())}, got '{text}' (no such file)"
    )


def genotype_string(genotype: Mapping[str, Any]) -> str:
    """The repository's printed form, readable by its `eval`-based tools and by us."""
    def edges(key: str) -> str:
        return "[" + ", ".join(f"('{op}', {index})" for op, index in genotype[key]) + "]"

    def concat(key: str) -> str:
        return "[" + ", ".join(str(i) for i in genotype[key]) + "]"

    return (
        f"Genotype(normal={edges('normal')}, normal_concat={concat('normal_concat')}, "
        f"reduce={edges('reduce')}, reduce_concat={concat('reduce_concat')})"
    )
