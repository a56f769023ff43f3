"""Ground-truth tables: JSONL and CSV, column choice, and the errors a user's file can cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.arch import arch_id
from nas.errors import ArtifactError, ConfigError
from nas.rank.truth import read_truth
from search_spaces import create_space
from search_spaces.nb201.cells import to_string

SPACE = create_space("nb201")
CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
LARGEST = SPACE.largest()
SMALLEST = SPACE.smallest()


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_jsonl_accepts_canonical_archs_and_benchmark_strings(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "truth.jsonl",
        [{"arch": CELL, "top1": 93.5, "note": "x"}, {"arch": LARGEST, "top1": 94}],
    )
    table = read_truth(path, SPACE)
    assert len(table) == 2 and table.column == "top1"
    cell = SPACE.normalize(CELL)
    assert table.lookup(cell) == 93.5 and table.values[arch_id(LARGEST)] == 94.0
    assert list(table.archs.values()) == [cell, LARGEST]
    assert cell in table and SMALLEST not in table
    with pytest.raises(ArtifactError, match="none for"):
        table.lookup(SMALLEST)


def test_csv_picks_the_dataset_column(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text(
        "arch,cifar10_test_top1,imagenet16_120_test_top1\n"
        f"{CELL},93.7,44.0\n{to_string(LARGEST)},94.1,41.5\n"
    )
    assert read_truth(path, SPACE, dataset="cifar10").lookup(LARGEST) == 94.1
    table = read_truth(path, SPACE, dataset="ImageNet16-120")
    assert table.column == "imagenet16_120_test_top1" and table.lookup(LARGEST) == 41.5
    assert read_truth(path, SPACE, column="cifar10_test_top1").lookup(LARGEST) == 94.1
    with pytest.raises(ConfigError, match="imagefolder_test_top1 or top1"):
        read_truth(path, SPACE, dataset="imagefolder")
    with pytest.raises(ConfigError, match="name the dataset"):
        read_truth(path, SPACE)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"arch": CELL, "top1": 1.0}, {"arch": CELL, "top1": 2.0}], "line 2.*line 1 again"),
        ([{"arch": CELL, "top1": 1.0}, {"top1": 2.0}], "line 2: expected an 'arch'"),
        ([{"arch": CELL, "top1": 1.0}, {"arch": LARGEST}], "line 2: expected a value 'top1'"),
        ([{"arch": CELL, "top1": "high"}], "line 1: expected a number"),
        ([{"arch": CELL, "top1": True}], "line 1: expected a number"),
        ([{"arch": CELL, "top1": 1.0}, {"arch": "|bad~0|", "top1": 2.0}], "line 2: nb201"),
        ([{"arch": CELL, "top1": 1.0}, [1, 2]], "line 2: expected an object"),
        ([], "empty table"),
    ],
)
def test_bad_jsonl_rows_name_file_and_line(
    tmp_path: Path, rows: list[object], message: str
) -> None:
    path = _jsonl(tmp_path / "truth.jsonl", rows)
    with pytest.raises(ArtifactError, match=message) as info:
        read_truth(path, SPACE)
    assert str(path) in str(info.value)


def test_non_finite_values_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    path.write_text(f'{{"arch": "{CELL}", "top1": NaN}}\n')
    with pytest.raises(ArtifactError, match="line 1: expected a finite number"):
        read_truth(path, SPACE)
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(f"arch,top1\n{CELL},inf\n{to_string(LARGEST)},\n")
    with pytest.raises(ArtifactError, match="line 2: expected a finite number"):
        read_truth(csv_path, SPACE)


def test_csv_empty_cell_is_a_missing_value(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"arch,top1\n{CELL},90\n{to_string(LARGEST)},\n")
    with pytest.raises(ArtifactError, match="line 3: expected a value 'top1'"):
        read_truth(path, SPACE)


def test_missing_file_and_bad_json_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_truth(tmp_path / "absent.csv", SPACE)
    with pytest.raises(ConfigError, match="does not exist"):
        read_truth(tmp_path / "absent.jsonl", SPACE)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"arch": 1}\n{oops\n')
    with pytest.raises(ConfigError, match="line 2: invalid JSON"):
        read_truth(bad, SPACE)


def test_head_of_the_real_nb201_table_reads(nb201_csv: Path, tmp_path: Path) -> None:
    head = tmp_path / "head.csv"
    head.write_text("".join(nb201_csv.read_text().splitlines(keepends=True)[:301]))
    table = read_truth(head, SPACE, dataset="cifar10")
    assert len(table) == 300 and table.column == "cifar10_test_top1"
    assert all(0.0 <= v <= 100.0 for v in table.values.values())
    assert read_truth(head, SPACE, dataset="cifar100").lookup(SPACE.normalize(CELL)) < 75


@pytest.mark.slow
def test_the_whole_real_nb201_table_reads(nb201_csv: Path) -> None:
    table = read_truth(nb201_csv, SPACE, dataset="cifar10")
    assert len(table) == 15_625
    assert max(table.values.values()) == pytest.approx(94.37, abs=0.01)  # the README's maximum
