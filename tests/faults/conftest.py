"""Fixtures of the fault suite: one tiny run made once per session, copied for each case.

Each fault case works on its own copy of the pristine run, from an empty working folder, so
the case can check that nothing was written outside the runs folder and nothing earlier in it
was lost.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from tests.faults import pristine

MAX_LINES = 3
# files a failed command may rewrite: the stage record and the stage's resolved options


def _may_change(name: str) -> bool:
    return name.endswith("manifest.json") or "/config/" in f"/{name}"


@pytest.fixture(scope="session")
def pristine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`runs/r/`: supernet (weights, checkpoint), profile of cpu, search `s`, one export."""
    return pristine.build(tmp_path_factory.mktemp("pristine") / "runs")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden lock files aside) with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".locks" not in p.parts
    }


@dataclass
class Sandbox:
    """A copy of the pristine runs folder and an empty working folder beside it."""

    root: Path
    runs: Path
    work: Path

    @property
    def run(self) -> Path:
        return self.runs / pristine.RUN

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--runs-dir", str(self.runs)]
                                  if "--runs-dir" not in args else list(args))


@pytest.fixture
def sandbox(pristine_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        Sandbox]:
    runs = tmp_path / "runs"
    shutil.copytree(pristine_run.parent, runs)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NAS_RUNS_DIR", str(runs))
    yield Sandbox(tmp_path, runs, work)


def assert_clean_failure(result: Result, *, mentions: str | None = None) -> None:
    """Exit code 2, at most `MAX_LINES` lines, no traceback, `mentions` in the message."""
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output, output
    assert 1 <= len(lines) <= MAX_LINES, output
    if mentions is not None:
        assert mentions in output, output


def assert_nothing_lost(before: dict[str, str], after: dict[str, str], *,
                        damaged: str | None = None) -> None:
    """Every file there before is still there, unchanged (the stage record aside)."""
    for name, digest in before.items():
        assert name in after, f"{name} was removed"
        if not _may_change(name) or name == damaged:
            assert after[name] == digest, f"{name} was changed"
