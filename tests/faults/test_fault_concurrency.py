"""Two writers on one run: the manifest keeps every record, a second writer of a stage is
refused (or waits), and a stage whose writer died shows as interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir, stage_status
from nas.locks import StageLock, Writer
from search_spaces.nb201 import to_string
from search_spaces.nb201.synthetic import synthetic_table
from tests.faults import pristine
from tests.faults.conftest import Sandbox, assert_clean_failure
from tests.fixtures.tiny_nb201 import write_truth

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_processes_recording_stages_keep_every_record(tmp_path: Path) -> None:
    # both writers start recording together (after their imports), so their edits interleave
    go = tmp_path / "go"
    code = (
        "import sys, time\nfrom pathlib import Path\nimport nas.artifacts\n"
        # the versions recorded per stage import torch: seconds per process, beside the point
        "nas.artifacts.environment = dict\nfrom nas.artifacts import RunDir\n"
        f"run = RunDir(Path({str(tmp_path)!r}), 'shared')\n"
        f"print('ready', flush=True)\nwhile not Path({str(go)!r}).exists(): time.sleep(0.005)\n"
        "for i in range(25):\n"
        "    run.begin_stage(f'{sys.argv[1]}-{i}', config={}, argv=[])\n"
        "    run.end_stage(f'{sys.argv[1]}-{i}')\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", code, name], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for name in ("a", "b")]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read() if writer.stderr else ""
    stages = RunDir(tmp_path, "shared").manifest()["stages"]
    assert len(stages) == 50
    assert {entry["status"] for entry in stages.values()} == {"done"}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "nb201.jsonl"
    path.write_text("".join(json.dumps({**row, "arch": to_string(row["arch"])}) + "\n"
                            for row in synthetic_table(0)))
    return path


def _search(table: Path, runs: Path, *extra: str) -> list[str]:
    return ["search", "--oracle", str(table), "--space", "nb201", "--objectives",
            "top1,latency_ms", "--budget", "4", "--population", "4", "--tag", "t",
            "--runs-dir", str(runs), *extra]


def test_a_second_writer_of_a_search_is_refused_then_waits(table: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    lock = StageLock(runs / "oracle-nb201", "search-t").acquire()
    try:
        refused = runner.invoke(app, _search(table, runs))
        assert_clean_failure(refused, mentions="is being written by pid")
        assert str(os.getpid()) in refused.output and "--wait" in refused.output
        assert not (runs / "oracle-nb201" / "search" / "t").exists()
        threading.Timer(1.0, lock.release).start()
        waited = runner.invoke(app, _search(table, runs, "--wait"))
    finally:
        lock.release()
    assert waited.exit_code == 0, waited.output
    assert (runs / "oracle-nb201" / "search" / "t" / "pareto.json").is_file()


def test_searches_sharing_a_study_through_storage_are_not_locked(
    table: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    with StageLock(runs / "oracle-nb201", "search-t"):
        result = runner.invoke(app, _search(table, runs, "--storage", storage))
    assert result.exit_code == 0, result.output


def test_a_killed_writer_leaves_its_stage_interrupted_and_its_lock_free(tmp_path: Path) -> None:
    code = (
        "import time\nfrom pathlib import Path\nimport nas.artifacts\n"
        "nas.artifacts.environment = dict\nfrom nas.artifacts import RunDir\n"  # as above
        "from nas.locks import StageLock\n"
        f"run = RunDir(Path({str(tmp_path)!r}), 'victim')\n"
        "StageLock(run.path, 'search-x').acquire()\n"
        "run.begin_stage('search-x', config={}, argv=['nas', 'search'])\n"
        "print('ready', flush=True)\ntime.sleep(120)\n"
    )
    victim = _python(code)
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "ready"
        listed = runner.invoke(app, ["runs", "list", "--json", "--runs-dir", str(tmp_path)])
        assert json.loads(listed.output)[0]["stages"] == {"search-x": "running"}
        with pytest.raises(Exception, match="is being written by pid"):
            StageLock(tmp_path / "victim", "search-x").acquire()
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    listed = runner.invoke(app, ["runs", "list", "--json", "--runs-dir", str(tmp_path)])
    assert json.loads(listed.output)[0]["stages"] == {"search-x": "interrupted"}
    shown = runner.invoke(app, ["runs", "show", "victim", "--runs-dir", str(tmp_path)])
    assert "interrupted" in shown.output
    StageLock(tmp_path / "victim", "search-x").acquire().release()  # the kernel freed it


def test_a_lock_held_by_a_dead_owners_orphan_is_replaced(tmp_path: Path) -> None:
    """A forked child (a data-loader worker) may keep the lock after its parent was killed:
    the owner recorded in the file is dead, so the lock file is replaced."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    path = tmp_path / ".locks" / "search-x.lock"
    path.parent.mkdir()
    owner = Writer(int(dead.stdout), Writer.this_process().host)
    path.write_text(json.dumps(owner.to_dict()))
    import fcntl

    fd = os.open(path, os.O_RDWR)  # holds the old file's lock, as the orphan would
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with StageLock(tmp_path, "search-x") as lock:
            assert lock.path.is_file()
    finally:
        os.close(fd)


def test_stage_status_of_a_living_writer_and_an_old_manifest() -> None:
    me = Writer.this_process()
    alive = {"status": "running", "writer": {"pid": me.pid, "host": me.host,
                                             "start": me.start}}
    assert stage_status(alive) == "running"
    assert stage_status({"status": "running"}) == "running"  # recorded before writers were
    other_host = {"status": "running", "writer": {"pid": 1, "host": "elsewhere"}}
    assert stage_status(other_host) == "running"  # cannot be checked from here
    reused = {"status": "running", "writer": {"pid": me.pid, "host": me.host,
                                              "start": (me.start or 0) + 1}}
    assert stage_status(reused) == ("interrupted" if me.start is not None else "running")


def test_a_second_ranking_of_a_tag_is_refused_then_waits(sandbox: Sandbox) -> None:
    truth = write_truth(sandbox.root / "truth.jsonl", 8)
    rank = [*pristine.rank_args(truth), "--run", pristine.RUN]
    before = (sandbox.run / "rank/k/scores.jsonl").read_bytes()
    lock = StageLock(sandbox.run, f"rank-{pristine.RANK_TAG}").acquire()
    try:
        assert_clean_failure(sandbox.invoke(*rank), mentions="is being written by pid")
        assert (sandbox.run / "rank/k/scores.jsonl").read_bytes() == before
        threading.Timer(1.0, lock.release).start()
        waited = sandbox.invoke(*rank, "--wait")
    finally:
        lock.release()
    assert waited.exit_code == 0, waited.output
    assert (sandbox.run / "rank/k/scores.jsonl").read_bytes() == before  # all scores reused
