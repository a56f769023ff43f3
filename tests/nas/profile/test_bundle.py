from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import toy_space  # type: ignore[import-not-found]

from nas.profile.bundle import RUNNER_NAME, write_bundle
from nas.profile.fit import build_predictors, import_measurements
from nas.profile.store import ProfileStore

# runs the bundle's runner in a fresh isolated interpreter (-I: no PYTHONPATH, no user site,
# no script dir on sys.path), then fails if torch or nas got imported along the way
CHECK = (
    "import sys; sys.argv = sys.argv[1:]; "
    "import importlib.util as u; spec = u.spec_from_file_location('runner', sys.argv[0]); "
    "m = u.module_from_spec(spec); spec.loader.exec_module(m); code = m.main(sys.argv[1:]); "
    "bad = [n for n in sys.modules if n.split('.')[0] in ('torch', 'nas', 'predictors', "
    "'search_spaces')]; "
    "sys.exit(f'imported {bad}') if bad else sys.exit(code)"
)


@pytest.mark.slow
def test_bundle_runner_is_standalone_and_importable(tmp_path: Path) -> None:
    space = toy_space.ToyChainSpace(resolutions=(8,))
    out = tmp_path / "bundle"
    manifest = write_bundle(space, space.build_supernet(), out, samples=6)
    assert manifest["n_subnets"] == 6
    assert manifest["n_blocks"] == len(space.block_key_universe([8]))
    assert (out / RUNNER_NAME).is_file() and (out / "bundle.json").is_file()
    results = tmp_path / "results.jsonl"
    done = subprocess.run(
        [sys.executable, "-I", "-c", CHECK, str(out / RUNNER_NAME), str(out),
         "--out", str(results), "--rounds", "2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    # two rounds: every model twice, the second pass after the first
    assert len(records) == 2 * len(manifest["items"])
    assert [r["round"] for r in records] == sorted(r["round"] for r in records)
    assert all(r["latency_ms"] > 0 and r["q1_ms"] <= r["latency_ms"] <= r["q3_ms"]
               for r in records)
    store = ProfileStore(tmp_path / "remote", "pi4")
    assert import_measurements(space, store, results) == (12, 2 * manifest["n_blocks"])
    report = build_predictors(space, store, resolutions=[8])
    assert report["n_blocks"] == manifest["n_blocks"] and report["n_subnets"] == 6
    assert report["noise_floor"]["n_pairs"] == 6
    # a second run of the runner resumes: nothing left to measure
    again = subprocess.run(
        [sys.executable, "-I", str(out / RUNNER_NAME), str(out), "--out", str(results),
         "--rounds", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert len(results.read_text().splitlines()) == len(records)


def test_runner_source_imports_only_stdlib_numpy_onnxruntime() -> None:
    import ast

    from nas.profile import bundle

    tree = ast.parse(bundle.RUNNER.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime"}
    assert roots <= allowed, roots - allowed
