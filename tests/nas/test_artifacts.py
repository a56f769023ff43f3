from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.artifacts import (
    RunDir,
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    stage_status,
)
from nas.errors import ArtifactError, ConfigError


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.json"
    atomic_write_json(path, {"v": 1})
    atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert os.listdir(path.parent) == ["x.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]


def test_jsonl_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with open(path, "a") as handle:
        handle.write('{"step": 3')  # a kill in the middle of an append
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_jsonl_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\nbroken\n{"a": 2}\n')
    with pytest.raises(ArtifactError, match="line 2"):
        list(read_jsonl(path))


def test_run_manifest_records_stages(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "r1")
    assert not run.exists()
    run.begin_stage(
        "train-supernet", config={"epochs": 2}, seed=7, device="cpu", argv=["nas", "x"]
    )
    run.update_manifest(space={"name": "toy"})
    run.end_stage("train-supernet", summary={"top1": 0.5})
    manifest = run.manifest()
    stage = manifest["stages"]["train-supernet"]
    assert stage["status"] == "done" and stage["seed"] == 7 and stage["config"] == {"epochs": 2}
    assert stage["command"] == ["nas", "x"] and stage["summary"] == {"top1": 0.5}
    assert stage["environment"]["torch"] and stage["environment"]["python"]
    assert manifest["space"] == {"name": "toy"}
    assert json.loads((run.path / "config" / "train-supernet.json").read_text()) == {"epochs": 2}


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden"])
def test_bad_run_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        RunDir(tmp_path, name)


def test_missing_run_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="nas train-supernet"):
        RunDir(tmp_path, "nope").require()


def test_a_failed_first_stage_leaves_no_empty_run(tmp_path: Path) -> None:
    from nas.artifacts import RunDir

    run = RunDir(tmp_path, "new")
    with pytest.raises(ValueError), run.kept_only_if_used():
        run.sub("supernet", "latency_table.json")  # makes supernet/, writes nothing
        raise ValueError("bad option")
    assert not run.path.exists()
    kept = RunDir(tmp_path, "kept")
    with pytest.raises(ValueError), kept.kept_only_if_used():
        kept.sub("supernet", "x.json").write_text("{}")
        raise ValueError("after a file was written")
    assert (kept.path / "supernet" / "x.json").is_file()


def test_a_dead_writers_stage_reads_interrupted(tmp_path: Path) -> None:
    # a child process begins a stage and dies without ending it (as under `kill -9`)
    code = ("import sys; from pathlib import Path; from nas.artifacts import RunDir; "
            "RunDir(Path(sys.argv[1]), 'killed').begin_stage('train-supernet', config={})")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    info = RunDir(tmp_path, "killed").manifest()["stages"]["train-supernet"]
    assert info["status"] == "running" and stage_status(info) == "interrupted"
    run = RunDir(tmp_path, "alive")  # this process is still writing its stage
    run.begin_stage("profile-cpu", config={})
    assert stage_status(run.manifest()["stages"]["profile-cpu"]) == "running"
    elsewhere = {**info, "writer": {"pid": info["writer"]["pid"], "host": "another-machine"}}
    assert stage_status(elsewhere) == "running"  # cannot be checked from here
    assert stage_status({"status": "done", "writer": info["writer"]}) == "done"
