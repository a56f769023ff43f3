"""Ground truth for ranking: the measured quality (top-1) of subnets, from a user's file.

Two formats, chosen by the file's suffix:

- JSONL (any suffix but `.csv`): one `{"arch": ..., "top1": ...}` per line; `arch` in any form
  the space's `normalize()` accepts (canonical dict, NAS-Bench-201 string, ...). Other keys are
  allowed and ignored unless chosen as the column.
- CSV with an `arch` column and one column per metric, such as the NAS-Bench-201 table
  `arch,cifar10_test_top1,cifar100_test_top1,imagenet16_120_test_top1`.

The value column is, in order of preference: `column` when given; `<dataset>_test_top1` when a
dataset is named (`cifar10`, `cifar100`, `imagenet16-120` ...); `top1`. Rows are keyed by
`arch_id` of the normalised arch, so any spelling of a subnet finds its row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.arch import arch_id
from nas.config import read_user_jsonl, read_user_text
from nas.errors import ArtifactError, ConfigError, InvalidArchError
from search_spaces.base import SearchSpace

DEFAULT_COLUMN = "top1"


@dataclass(frozen=True)
class TruthTable:
    """Measured values of subnets.

    Attributes:
        values: `arch_id` -> measured value (higher is better).
        archs: `arch_id` -> canonical arch, in file order.
        source: the file read.
        column: the value column (or JSONL key) used.
    """

    values: Mapping[str, float]
    archs: Mapping[str, dict[str, Any]]
    source: str
    column: str

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Mapping) and arch_id(arch) in self.values

    def lookup(self, arch: Mapping[str, Any]) -> float:
        """The measured value of a canonical `arch`.

        Raises:
            ArtifactError: when the table has no row for `arch`.
        """
        value = self.values.get(arch_id(arch))
        if value is None:
            raise ArtifactError(
                f"{self.source}: expected a row for every ranked subnet, got none for "
                f"{dict(arch)}; sample the subnets from the table or complete it"
            )
        return value


def read_truth(
    path: Path, space: SearchSpace, *, dataset: str | None = None, column: str | None = None
) -> TruthTable:
    """Read a ground-truth file (see the module docstring for formats and the column choice).

    Raises:
        ConfigError: a missing file, unparseable JSON, or no usable value column.
        ArtifactError: a row without arch or value, a non-finite or non-numeric value, an arch
            outside the space, or a subnet listed twice (the message names file and line).
    """
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    first = next(iter(rows), None)
    if first is None:
        raise ArtifactError(f"{path}: expected at least one row, got an empty table")
    chosen = _column(first[1], dataset, column, path)
    values: dict[str, float] = {}
    archs: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for line, row in rows:
        arch = _arch(row, space, f"{path} line {line}")
        key = arch_id(arch)
        if key in lines:
            raise ArtifactError(
                f"{path} line {line}: expected each subnet once, got the subnet of line "
                f"{lines[key]} again ({key}); remove one of the two rows"
            )
        values[key] = _value(row, chosen, f"{path} line {line}")
        archs[key], lines[key] = arch, line
    return TruthTable(values=values, archs=archs, source=str(path), column=chosen)


def _jsonl_rows(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    rows = []
    for line, row in read_user_jsonl(path, what="truth table", error=ConfigError):
        if not isinstance(row, Mapping):
            raise ArtifactError(
                f'{path} line {line}: expected an object {{"arch": ..., "top1": ...}}, '
                f"got {type(row).__name__}"
            )
        rows.append((line, row))
    return rows


def _csv_rows(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    text = read_user_text(path, what="truth table", hint="pass a CSV or JSONL file")
    try:
        return list(_numbered(csv.DictReader(io.StringIO(text, newline=""))))
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a CSV table ({exc}); pass a CSV or JSONL file") from None


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for row in reader:
        # an empty cell is a missing value, not the text ""
        yield reader.line_num, {k: v for k, v in row.items() if k is not None and v != ""}


def _column(first: Mapping[str, Any], dataset: str | None, column: str | None, path: Path) -> str:
    candidates: Sequence[str]
    if column is not None:
        candidates = [column]
    elif dataset is not None:
        candidates = [f"{dataset.lower().replace('-', '_')}_test_top1", DEFAULT_COLUMN]
    else:
        candidates = [DEFAULT_COLUMN]
    for name in candidates:
        if name in first:
            return name
    available = sorted(k for k in first if k != "arch")
    raise ConfigError(
        f"{path}: expected a value column {' or '.join(candidates)}, got {', '.join(available)}; "
        "name the dataset or the column to use"
    )


def _arch(row: Mapping[str, Any], space: SearchSpace, where: str) -> dict[str, Any]:
    if "arch" not in row:
        raise ArtifactError(f"{where}: expected an 'arch' key, got {', '.join(sorted(row))}")
    try:
        return space.normalize(row["arch"])
    except InvalidArchError as exc:
        raise ArtifactError(f"{where}: {exc}") from None


def _value(row: Mapping[str, Any], column: str, where: str) -> float:
    if column not in row:
        raise ArtifactError(f"{where}: expected a value '{column}', got none")
    raw = row[column]
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        raise ArtifactError(f"{where}: expected a number for '{column}', got {raw!r}") from None
    if not math.isfinite(value):
        raise ArtifactError(f"{where}: expected a finite number for '{column}', got {raw!r}")
    return value
