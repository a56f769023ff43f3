"""`nas search` on a tabular oracle (no supernet needed), and its error paths."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from cli import app
from search_spaces.nb201 import to_string
from search_spaces.nb201.synthetic import synthetic_table

runner = CliRunner()


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "nb201.jsonl"
    rows = synthetic_table(0)
    with path.open("w") as handle:
        for row in rows:
            # a second device, twice as fast, as a per-device column
            record = {
                **row,
                "arch": to_string(row["arch"]),
                "latency_ms_fast": row["latency_ms"] / 2,
            }
            handle.write(json.dumps(record) + "\n")
    return path


def search(table: Path, *extra: str) -> list[str]:
    return [
        "search",
        "--oracle",
        str(table),
        "--space",
        "nb201",
        "--objectives",
        "top1,latency_ms",
        "--budget",
        "12",
        "--population",
        "6",
        *extra,
    ]


def test_oracle_search_writes_front_table_and_files(table_file: Path, runs_dir: Path) -> None:
    result = runner.invoke(app, [*search(table_file, "--latency-max", "3")])
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.stdout and "arch_id" in result.stdout
    out = runs_dir / "oracle-nb201" / "search" / "oracle"
    for name in ("pareto.json", "pareto.csv", "trials.jsonl", "pareto.png", "study.db"):
        assert (out / name).is_file(), name
    pareto = json.loads((out / "pareto.json").read_text())
    front = pareto["front"]
    assert front and all(m["values"]["latency_ms"] <= 3 for m in front)
    assert pareto["constraints"] == [{"metric": "latency_ms", "max": 3.0, "min": None}]
    assert [o["name"] for o in pareto["objectives"]] == ["top1", "latency_ms"]
    assert len((out / "trials.jsonl").read_text().splitlines()) == 12
    csv_rows = (out / "pareto.csv").read_text().splitlines()
    assert csv_rows[0].startswith("arch_id,edge_1_0") and len(csv_rows) == len(front) + 1
    manifest = json.loads((runs_dir / "oracle-nb201" / "manifest.json").read_text())
    assert manifest["stages"]["search-oracle"]["status"] == "done"


def test_rerun_resumes_without_new_trials(table_file: Path, runs_dir: Path) -> None:
    args = search(table_file, "--tag", "again", "--json")
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == second.exit_code == 0, second.output
    front = json.loads(first.stdout)
    assert front and all({"arch", "top1", "latency_ms"} <= set(row) for row in front)
    assert json.loads(second.stdout) == front
    db = runs_dir / "oracle-nb201" / "search" / "again" / "study.db"
    study = optuna.load_study(study_name="again", storage=f"sqlite:///{db}")
    assert len(study.get_trials()) == 12  # the rerun scored nothing again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--device", "cpu"], "expected --run NAME and --device D"),
        (["search", "--oracle", "ORACLE"], "expected --space SPACE"),
        (
            ["search", "--oracle", "ORACLE", "--space", "nb201", "--algorithm", "nsga3"],
            "unknown search algorithm 'nsga3'",
        ),
        (
            ["search", "--oracle", "ORACLE", "--space", "nb201", "--objectives", "top5"],
            "got 'top5'",
        ),
        (
            ["search", "--oracle", "ORACLE", "--space", "nb201", "--budget", "0"],
            "--budget: expected >= 1",
        ),
        (["search", "--oracle", "missing.jsonl", "--space", "nb201"], "does not exist"),
        (["search", "--run", "nope", "--device", "cpu"], "run 'nope' not found"),
    ],
)
def test_error_paths_exit_2_with_one_line(
    args: list[str], message: str, table_file: Path, runs_dir: Path
) -> None:
    args = [str(table_file) if a == "ORACLE" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_missing_arch_is_an_error_unless_skipped(tmp_path: Path, runs_dir: Path) -> None:
    table = tmp_path / "tiny.jsonl"
    rows = synthetic_table(0)[:50]  # most cells are missing
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, search(table))
    assert result.exit_code == 2
    assert "--skip-missing" in result.output and len(result.output.strip().splitlines()) == 1
    skipped = runner.invoke(
        app, [*search(table, "--skip-missing", "--tag", "s", "--json", "--algorithm", "random")]
    )
    assert skipped.exit_code == 0, skipped.output
    known = {json.dumps(r["arch"], sort_keys=True) for r in rows}
    front = json.loads(skipped.stdout)
    assert all(json.dumps(row["arch"], sort_keys=True) in known for row in front)


def test_one_front_per_device(table_file: Path, runs_dir: Path) -> None:
    args = search(
        table_file,
        "--device",
        "fast",
        "--device",
        "slow",
        "--tag",
        "dev",
        "--objectives",
        "top1,latency",
        "--latency-max",
        "2",
        "--json",
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["device"] for row in rows} == {"fast", "slow"}
    fast = [row for row in rows if row["device"] == "fast"]
    assert all("latency_ms_fast" in row and row["latency_ms_fast"] <= 2 for row in fast)
    base = runs_dir / "oracle-nb201" / "search"
    assert (base / "dev-fast" / "pareto.json").is_file()
    assert (base / "dev-slow" / "pareto.json").is_file()


def test_supernet_mode_wiring_with_stand_ins(
    table_file: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--run/--device` path: accuracy and latency objectives from the run (stubbed here)."""
    from nas.artifacts import RunDir
    from nas.search import objectives as objs
    from nas.search.oracle import Oracle
    from search_spaces.nb201 import NB201Space

    space = NB201Space()
    RunDir(runs_dir, "r1").update_manifest(space=space.spec())
    oracle = Oracle.load(table_file, space)

    class FakeAccuracy:
        supernet = None

        @classmethod
        def load(cls, run: RunDir, **kwargs: object) -> FakeAccuracy:
            assert run.name == "r1" and kwargs["split"] == "val"
            return cls()

        def objective(self) -> objs.Objective:
            return oracle.objective("top1", "maximize", cheap=False, unit="%")

    def fake_latency(run: RunDir, device: str, space_: object) -> objs.LatencySource:
        objective = oracle.objective("latency_ms", "minimize", cheap=True, unit="ms")
        return objs.LatencySource(objective, {"fingerprint": None}, None)

    monkeypatch.setattr(objs, "SupernetAccuracy", FakeAccuracy)
    monkeypatch.setattr(objs, "predictor_latency", fake_latency)
    result = runner.invoke(
        app,
        [
            "search",
            "--run",
            "r1",
            "--device",
            "cpu",
            "--budget",
            "12",
            "--population",
            "6",
            "--latency-max",
            "3",
            "--macs-max",
            "100",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    front = json.loads(result.stdout)
    assert front and all(row["latency_ms"] <= 3 and row["macs"] <= 100e6 for row in front)
    assert all({"arch", "top1", "latency_ms", "device"} <= set(row) for row in front)
    pareto = json.loads((runs_dir / "r1" / "search" / "cpu" / "pareto.json").read_text())
    assert pareto["device"] == "cpu" and len(pareto["constraints"]) == 2


@pytest.mark.slow
def test_workers_share_one_study_and_one_front(table_file: Path, runs_dir: Path) -> None:
    args = search(table_file, "--tag", "w", "--workers", "3", "--budget", "40", "--json")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = runs_dir / "oracle-nb201" / "search" / "w"
    study = optuna.load_study(study_name="w", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    ids = [t.user_attrs["arch_id"] for t in trials]
    assert len(ids) == 40 and len(set(ids)) == 40  # the budget is the study's, none twice
    assert len({t.user_attrs["owner"]["pid"] for t in trials}) >= 2
    best = {t.number for t in study.best_trials}  # Optuna's own front of the whole study
    front = {t.user_attrs["arch_id"] for t in trials if t.number in best}
    assert {row["arch_id"] for row in json.loads(result.stdout)} == front
    pareto = json.loads((out / "pareto.json").read_text())
    assert {m["arch_id"] for m in pareto["front"]} == front
    assert len((out / "trials.jsonl").read_text().splitlines()) == 40
    # one process on the study later: the budget stays the study's, the front is all of it
    again = runner.invoke(app, search(table_file, "--tag", "w", "--budget", "40", "--json"))
    assert again.exit_code == 0, again.output
    assert len(study.get_trials()) == 40
    assert {row["arch_id"] for row in json.loads(again.stdout)} == front


@pytest.mark.slow
def test_failing_workers_stop_with_their_error(tmp_path: Path, runs_dir: Path) -> None:
    table = tmp_path / "tiny.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in synthetic_table(0)[:50]))
    result = runner.invoke(app, search(table, "--workers", "2"))
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert "search worker" in lines[0] and "--skip-missing" in result.output, result.output
