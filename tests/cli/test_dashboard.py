"""`nas dashboard RUN` serves the run's search study: started on a free port, its page fetched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir

runner = CliRunner()


def _run_with_study(runs_dir: Path) -> RunDir:
    run = RunDir(runs_dir, "r")
    run.update_manifest(space={"name": "toy"})
    folder = run.search_dir("cpu")
    folder.mkdir(parents=True)
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="cpu",
                                directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)),
                   n_trials=3)
    (folder / "pareto.json").write_text("{}")
    return run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dashboard_serves_the_study(tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard", reason="optional: pip install 'nas[dashboard]'")
    _run_with_study(tmp_path)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "dashboard", "r", "--runs-dir",
         str(tmp_path), "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2], env={**os.environ},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 60, ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    page = answer.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert server.poll() is None, server.communicate()[0]
        assert "<html" in page.lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as api:
            assert b'"study_name": "cpu"' in api.read().replace(b'":"', b'": "')
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_without_a_search_is_one_line(tmp_path: Path) -> None:
    RunDir(tmp_path, "empty").update_manifest(space={"name": "toy"})
    result = runner.invoke(app, ["dashboard", "empty", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no search yet" in result.output
