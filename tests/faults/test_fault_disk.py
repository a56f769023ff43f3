"""A full, read-only or forbidden disk: one line saying what was kept, nothing torn.

The full and read-only cases run on a 1 MB tmpfs mounted for the test (root only, as in CI);
elsewhere they are skipped with the reason. Permission errors are simulated (root is never
refused by file modes).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from nas.artifacts import append_jsonl, atomic_save_with, atomic_write_json, read_jsonl
from nas.errors import WriteError
from search_spaces.nb201 import to_string
from search_spaces.nb201.synthetic import synthetic_table
from tests.faults.conftest import assert_clean_failure

runner = CliRunner()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs at `tmp_path/disk`."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system of `folder` up to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def _measurements(path: Path, rows: int, start: int = 0) -> Path:
    table = synthetic_table(0)[start:start + rows]
    path.write_text("".join(json.dumps({"arch": to_string(r["arch"]),
                                        "latency_ms": r["latency_ms"]}) + "\n" for r in table))
    return path


def _import(file: Path, runs: Path) -> list[str]:
    return ["profile", "import", str(file), "--device", "phone", "--space", "nb201",
            "--predictor", "ridge", "--runs-dir", str(runs)]


def test_a_full_disk_keeps_the_profile_whole(small_disk: Path, tmp_path: Path) -> None:
    runs = small_disk / "runs"
    first = runner.invoke(app, _import(_measurements(tmp_path / "a.jsonl", 12), runs))
    assert first.exit_code == 0, first.output
    latency = next(runs.rglob("latency.jsonl"))
    before = latency.read_text()
    filler = _fill(small_disk)
    full = runner.invoke(app, _import(_measurements(tmp_path / "b.jsonl", 400, 12), runs))
    assert_clean_failure(full, mentions="the disk is full")
    assert latency.read_text().startswith(before)
    assert latency.read_text().endswith("\n")  # no torn line left for the next append
    assert not list(small_disk.rglob("*.tmp"))
    filler.unlink()
    again = runner.invoke(app, _import(_measurements(tmp_path / "c.jsonl", 12, 500), runs))
    assert again.exit_code == 0, again.output
    records = list(read_jsonl(latency))
    assert len(records) >= 24 and all("latency_ms" in r for r in records)


def test_a_read_only_disk_is_one_line_and_keeps_the_search(
    small_disk: Path, tmp_path: Path
) -> None:
    table = _measurements(tmp_path / "t.jsonl", 20_000)  # every nb201 cell
    runs = small_disk / "runs"
    search = ["search", "--oracle", str(table), "--space", "nb201", "--objectives",
              "latency_ms", "--budget", "4", "--population", "4", "--runs-dir", str(runs)]
    first = runner.invoke(app, search)
    assert first.exit_code == 0, first.output
    pareto = next(runs.rglob("pareto.json"))
    kept = pareto.read_bytes()
    # a read-only view of the same files (a remount would find them busy in this process)
    view = tmp_path / "view"
    view.mkdir()
    subprocess.run(["mount", "--bind", str(small_disk), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        search[-1] = str(view / "runs")
        result = runner.invoke(app, [*search, "--budget", "6"])
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
    assert_clean_failure(result, mentions="read-only")
    assert pareto.read_bytes() == kept


def test_a_library_writer_on_a_full_disk_keeps_the_old_file(small_disk: Path) -> None:
    path = small_disk / "weights.pt"
    torch.save({"x": torch.zeros(2)}, path)
    old = path.read_bytes()
    _fill(small_disk)
    with pytest.raises(WriteError, match="the disk is full; its previous version is kept"):
        atomic_save_with(path, lambda tmp: torch.save({"x": torch.zeros(100_000)}, tmp))
    assert path.read_bytes() == old
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "weights.pt"]


def test_permission_denied_says_what_was_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(path, {"v": 1})

    def refused(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", dst)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(WriteError, match="permission denied; its previous version is kept"):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_files_are_readable_by_the_team_and_follow_the_umask(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {})
    append_jsonl(tmp_path / "a.jsonl", {})
    atomic_save_with(tmp_path / "a.pt", lambda tmp: torch.save({}, tmp))
    old = os.umask(0o022)
    try:
        for name in ("a.json", "a.jsonl", "a.pt"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {})
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)
