"""Every artifact kind x every kind of damage, through every command that reads it.

Each case damages one file of a copy of the pristine run, runs one command that reads the
file, and expects exit code 2 with at most three lines naming the file and no traceback;
nothing outside the runs folder is written and no other file of the run is changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.faults import pristine
from tests.faults.conftest import Sandbox, assert_clean_failure, assert_nothing_lost, snapshot
from tests.fixtures.tiny_nb201 import write_truth

Damage = Callable[[Path], None]
RUN, TAG = pristine.RUN, pristine.TAG


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(max(64, min(path.stat().st_size, 4096))))


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x80" + path.read_bytes()[3:])


def _wrong_shape(path: Path) -> None:
    """Valid in its format, of the wrong shape for what reads it."""
    if path.suffix == ".jsonl":
        with path.open("a") as handle:
            handle.write("[1, 2, 3]\n")
    elif path.suffix == ".json":
        path.write_text(json.dumps(_WRONG_JSON.get(path.name, [1, 2, 3])))
    elif path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({"unrelated": torch.zeros(3)}, str(path), metadata={"format": "other"})
    elif path.suffix == ".pt":
        torch.save({"format": 2, "config": "[]", "space": "{}"}, path)
    elif path.suffix == ".db":
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE unrelated (x INTEGER)")
        db.close()


# JSON objects whose keys or values are of the wrong type, per file name
_WRONG_JSON = {
    "manifest.json": {"name": RUN, "stages": {"x": [1]}},
    "model.json": {"kind": "ridge", "params": [1]},
    "selected.json": ["ridge"],
    "meta.json": {"space": "nb201", "format_version": 1},
    "pareto.json": {"front": [{"arch": [1, 2]}]},
    "arch.json": {"arch": {}, "space": {"name": pristine.SPACE}},
    "metrics.json": {"provenance": {"run": 5}},
    "reference.json": {"setup": {}, "latency_ms": "fast"},
    "train-supernet.json": [1, 2],
}

DAMAGES: dict[str, Damage] = {
    "empty": _empty, "truncated": _truncated, "random": _random, "not-utf8": _not_utf8,
    "wrong-shape": _wrong_shape,
}

SEARCH = ("search", "--run", RUN, "--device", "cpu", "--budget", "4", "--population", "4",
          "--tag", "new")
PREDICT = ("profile", "predict", "{archs}", "--run", RUN, "--device", "cpu")
RANK = (*pristine.rank_args(Path("{truth}")), "--run", RUN)


def _cases() -> list[tuple[str, tuple[str, ...]]]:
    """(file in the run, a command that reads it); `{kind}` and `{export}` are filled in."""
    return [
        ("manifest.json", ("runs", "show", RUN)),
        ("manifest.json", SEARCH),
        ("manifest.json", ("export", "--run", RUN, "--format", "pytorch")),
        ("manifest.json", ("profile", "fit", "--run", RUN, "--device", "cpu")),
        ("config/train-supernet.json", ("train-supernet", "--run", RUN, "--resume")),
        ("supernet/weights.safetensors", SEARCH),
        ("supernet/weights.safetensors", ("export", "--run", RUN, "--format", "pytorch")),
        ("supernet/weights.safetensors", ("eval", "--run", RUN, "--subnet", "{arch}")),
        ("supernet/checkpoint.pt", ("train-supernet", "--run", RUN, "--resume",
                                    "--max-steps", "3")),
        ("profile/cpu/latency.jsonl", ("profile", "fit", "--run", RUN, "--device", "cpu")),
        ("profile/cpu/reference.json", ("profile", "--run", RUN, "--device", "cpu",
                                        "--samples", "8", "--measure-ms", "2", "--rounds", "1")),
        ("predictor/cpu/selected.json", SEARCH),
        ("predictor/cpu/selected.json", PREDICT),
        ("predictor/cpu/report.json", ("profile", "fit", "--run", RUN, "--device", "cpu")),
        ("predictor/cpu/{kind}/model.json", SEARCH),
        ("predictor/cpu/{kind}/model.safetensors", SEARCH),
        ("predictor/cpu/{kind}/meta.json", SEARCH),
        ("predictor/cpu/{other}/model.json", (*PREDICT, "--kind", "{other}")),
        ("predictor/cpu/{other}/model.safetensors", (*PREDICT, "--kind", "{other}")),
        ("search/s/pareto.json", ("export", "--run", RUN, "--search", TAG, "--format",
                                  "pytorch")),
        ("search/s/study.db", ("search", "--run", RUN, "--device", "cpu", "--budget", "4",
                               "--population", "4", "--tag", TAG)),
        ("{export}/arch.json", ("finetune", "{export_dir}", "--epochs", "1")),
        ("{export}/metrics.json", ("finetune", "{export_dir}", "--epochs", "1")),
        ("{export}/weights.safetensors", ("finetune", "{export_dir}", "--epochs", "1")),
        ("rank/k/scores.jsonl", RANK),
        ("rank/k/settings.json", RANK),
    ]


# a JSONL file cut short ends in a torn line, what a kill mid-append leaves: readers skip it
# by design (and the next append cuts it off, see test_fault_properties); an empty score log
# is a ranking with no scores yet, scored again
CASES = [(file, command, damage) for file, command in _cases() for damage in DAMAGES
         if not (file.endswith(".jsonl") and damage == "truncated")
         and not (file.endswith("scores.jsonl") and damage == "empty")]


def _fill(text: str, sandbox: Sandbox) -> str:
    selected = json.loads((sandbox.run / "predictor/cpu/selected.json").read_text())["kind"]
    kinds = sorted(p.parent.name for p in (sandbox.run / "predictor/cpu").glob("*/model.json"))
    other = next((k for k in kinds if k != selected), selected)
    export = next((sandbox.run / "export").iterdir()).relative_to(sandbox.run)
    arch = json.loads((sandbox.run / export / "arch.json").read_text())["arch"]
    archs = sandbox.root / "archs.jsonl"
    archs.write_text(json.dumps(arch) + "\n")
    truth = sandbox.root / "truth.jsonl"
    if "{truth}" in text:
        write_truth(truth, 8)  # the pristine ranking's truth (same seed)
    return (text.replace("{kind}", selected).replace("{other}", other)
            .replace("{export_dir}", str(sandbox.run / export)).replace("{export}", str(export))
            .replace("{arch}", json.dumps(arch)).replace("{archs}", str(archs))
            .replace("{truth}", str(truth)))


@pytest.mark.parametrize(("file", "command", "damage"), CASES,
                         ids=[f"{c[0].split('/')[-1]}-{c[1][0]}-{c[2]}-{i}"
                              for i, c in enumerate(CASES)])
def test_damaged_artifact_is_one_line(
    sandbox: Sandbox, file: str, command: tuple[str, ...], damage: str
) -> None:
    path = sandbox.run / _fill(file, sandbox)
    args = [_fill(arg, sandbox) for arg in command]
    DAMAGES[damage](path)
    before = snapshot(sandbox.root)
    result = sandbox.invoke(*args)
    assert_clean_failure(result)
    after = snapshot(sandbox.root)
    assert_nothing_lost(before, after, damaged=str(path.relative_to(sandbox.root)))
    assert list(sandbox.work.iterdir()) == [], "wrote into the working folder"
    inputs = {"archs.jsonl", "truth.jsonl"}  # the commands' own inputs
    assert {p.name for p in sandbox.root.iterdir()} <= {"runs", "work", *inputs}


def test_runs_list_marks_a_damaged_manifest_and_lists_the_others(sandbox: Sandbox) -> None:
    """The overview keeps working: the damaged run is marked, exit 0."""
    (sandbox.run / "manifest.json").write_bytes(b"\xff")
    result = sandbox.invoke("runs", "list", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["name"] == RUN and "not UTF-8" in row["error"]
