"""The one reading layer for artifacts: every file a command reads back comes through here.

Each reader turns whatever can be wrong with a file (missing, unreadable, not UTF-8, empty,
truncated, random bytes, valid JSON of the wrong shape, a foreign safetensors/torch/SQLite
file) into one `ArtifactError` line: the file, what is wrong with it, and what to do. A
`Kind` names an artifact kind with its shape (`nas.schema`) and its remedy; the kinds of this
package are in `nas.artifact_kinds`.

Readers never repair and never write; they only refuse with a reason.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import ArtifactError
from nas.schema import ANY, Shape, ShapeError, describe

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Kind:
    """One kind of artifact.

    Attributes:
        name: what the file is, for messages ("predictor model.json").
        shape: what a reader relies on (`nas.schema`).
        remedy: what the user can do when the file is damaged ("re-run `nas profile fit`").
    """

    name: str
    shape: Shape = ANY
    remedy: str = "restore the file or re-run the command that wrote it"


UNKNOWN = Kind("file")


def damaged(path: Path, problem: str, kind: Kind = UNKNOWN) -> ArtifactError:
    """The one-line error for a damaged artifact: file, problem, remedy."""
    return ArtifactError(f"{path}: {problem} ({kind.name}); {kind.remedy}")


def read_bytes(path: Path, kind: Kind = UNKNOWN) -> bytes:
    """The bytes of `path`; a missing or unreadable file raises `ArtifactError`."""
    if not path.exists():
        raise ArtifactError(f"{path} does not exist ({kind.name}); {kind.remedy}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise damaged(path, f"cannot be read ({exc.strerror or exc})", kind) from None


def decode(data: bytes, path: Path, kind: Kind = UNKNOWN) -> str:
    """`data` as UTF-8 text, or `ArtifactError` naming the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start:exc.start + 1].hex()
        raise damaged(path, f"is not UTF-8 text (byte 0x{byte} at offset {exc.start})",
                      kind) from None


def read_text(path: Path, kind: Kind = UNKNOWN) -> str:
    return decode(read_bytes(path, kind), path, kind)


def parse_json(text: str) -> Any:
    """JSON as Python's parser reads it (NaN/Infinity tokens accepted; shapes check numbers)."""
    return json.loads(text)


def check_shape(value: Any, path: Path, kind: Kind, where: str = "") -> Any:
    """`value` when it has `kind.shape`, else `ArtifactError` naming the place."""
    try:
        kind.shape.check(value, where)
    except ShapeError as exc:
        raise damaged(path, f"wrong shape: {exc}", kind) from None
    return value


def load_json(path: Path, kind: Kind = UNKNOWN) -> Any:
    """The JSON document of `path`, checked against `kind.shape`."""
    text = read_text(path, kind)
    if not text.strip():
        raise damaged(path, "is empty", kind)
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        raise damaged(path, f"is not valid JSON ({exc.msg}, line {exc.lineno})", kind) from None
    except RecursionError:
        raise damaged(path, "is not valid JSON (nested too deeply)", kind) from None
    return check_shape(value, path, kind)


def iter_jsonl(path: Path, kind: Kind = UNKNOWN) -> Iterator[Any]:
    """Records of a JSONL file, each checked against `kind.shape`.

    Blank lines are skipped, and so is a torn last line (a kill or a full disk in the middle
    of an append; `nas.artifacts.append_jsonl` cuts it off before the next append). A missing
    file has no records.
    """
    if not path.is_file():
        return
    data = read_bytes(path, kind)
    lines = data.split(b"\n")
    last = len(lines) - 1 if lines[-1] else len(lines) - 2  # index of the last non-empty line
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        torn = index == last and not data.endswith(b"\n")
        try:
            record = parse_json(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            if torn:
                return
            problem = "is not UTF-8" if isinstance(exc, UnicodeDecodeError) else "is not JSON"
            raise damaged(path, f"line {index + 1} {problem}", kind) from None
        yield check_shape(record, path, kind, where=f"line {index + 1}")


def load_jsonl(path: Path, kind: Kind = UNKNOWN) -> list[Any]:
    return list(iter_jsonl(path, kind))


def finite(value: Any, path: Path, where: str, kind: Kind = UNKNOWN) -> float:
    """`value` as a finite float, else `ArtifactError` naming the place."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise damaged(path, f"{where}: expected a finite number, got {describe(value)}", kind)
    return float(value)


def _library_error(path: Path, kind: Kind, exc: BaseException, what: str) -> ArtifactError:
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
    return damaged(path, f"is not a readable {what} ({type(exc).__name__}: {first})", kind)


def _guarded(path: Path, kind: Kind, what: str, read: Callable[[], Any]) -> Any:
    """`read()`, with any error of the parsing library turned into `ArtifactError`.

    safetensors raises its own `SafetensorError` (a plain Exception), torch raises
    `RuntimeError`, `EOFError`, `UnpicklingError` and more for torn or foreign files: all
    mean the same to a user, so every exception but an interrupt is caught.
    """
    require_content(path, kind)
    try:
        return read()
    except ArtifactError:
        raise
    except MemoryError:
        raise damaged(path, f"is not a readable {what} (claims more memory than there is)",
                      kind) from None
    except Exception as exc:  # see the docstring
        raise _library_error(path, kind, exc, what) from None


def require_content(path: Path, kind: Kind) -> None:
    """Missing, empty or unreadable: the same message whatever library reads the file next."""
    if not path.exists():
        raise ArtifactError(f"{path} does not exist ({kind.name}); {kind.remedy}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise damaged(path, f"cannot be read ({exc.strerror or exc})", kind) from None
    if size == 0:
        raise damaged(path, "is empty", kind)


def tensors_metadata(path: Path, kind: Kind = UNKNOWN) -> dict[str, str]:
    """The metadata of a safetensors file (header only; tensors are not read)."""

    def read() -> dict[str, str]:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})

    result: dict[str, str] = _guarded(path, kind, "safetensors file", read)
    return result


def load_tensors(path: Path, kind: Kind = UNKNOWN, *, framework: str = "pt") -> dict[str, Any]:
    """Every tensor of a safetensors file, as torch tensors (`pt`) or numpy arrays."""

    def read() -> dict[str, Any]:
        if framework == "numpy":
            from safetensors.numpy import load_file as load_numpy

            return dict(load_numpy(str(path)))
        from safetensors.torch import load_file as load_torch_file

        return dict(load_torch_file(str(path)))

    result: dict[str, Any] = _guarded(path, kind, "safetensors file", read)
    return result


def load_torch(
    path: Path, kind: Kind = UNKNOWN, *, map_location: Any = "cpu", what: str = "torch file"
) -> Any:
    """A `torch.save` file read with `weights_only=True` (no arbitrary unpickling); `what` the
    file is, for the message ("is not a readable checkpoint")."""

    def read() -> Any:
        import torch

        with warnings.catch_warnings():  # torch warns about the "protocol" of random bytes
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)

    return _guarded(path, kind, what, read)


def check_sqlite(path: Path, kind: Kind = UNKNOWN, *, table: str | None = None) -> bool:
    """Whether `path` is an intact SQLite database (False: missing or empty; it may be new).

    Raises `ArtifactError` for a file that is not SQLite, fails SQLite's quick check, or (with
    `table`) lacks that table although it has others (another program's database).
    """
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise damaged(path, "is not an SQLite database", kind)
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60) as db:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        db.close()
    except sqlite3.DatabaseError as exc:
        raise damaged(path, f"is a damaged SQLite database ({exc})", kind) from None
    if not verdict or verdict[0] != "ok":
        raise damaged(path, f"is a damaged SQLite database ({verdict[0] if verdict else '?'})",
                      kind)
    if table is not None and tables and table not in tables:
        raise damaged(path, f"is an SQLite database without a '{table}' table", kind)
    return bool(tables)
