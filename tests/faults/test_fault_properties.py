"""Property-based checks of the reading layer and the append path (hypothesis): whatever the
bytes, a reader returns a value of its shape or raises one `ArtifactError`; a torn log tail
never ends up in the middle of a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas import artifact_kinds as kinds
from nas.artifacts import append_jsonl, read_jsonl
from nas.errors import ArtifactError
from nas.readers import check_sqlite, load_json, load_torch, tensors_metadata
from nas.schema import ShapeError
from tests.faults import pristine
from tests.faults.conftest import Sandbox

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON_KINDS = [kinds.MANIFEST, kinds.PARETO, kinds.PREDICTOR_META, kinds.PREDICTOR_PARAMS,
              kinds.PREDICTOR_SELECTED, kinds.ARCH_JSON, kinds.EXPORT_METRICS, kinds.REFERENCE,
              kinds.LATENCY_RECORD]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)


@FAST
@given(data=st.binary(max_size=300), kind=st.sampled_from(JSON_KINDS))
def test_any_bytes_as_json_give_a_value_or_one_artifact_error(
    tmp_path: Path, data: bytes, kind: kinds.Kind
) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(data)
    try:
        load_json(path, kind)
    except ArtifactError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


@FAST
@given(value=json_values, kind=st.sampled_from(JSON_KINDS))
def test_shapes_raise_only_shape_errors(value: object, kind: kinds.Kind) -> None:
    try:
        kind.shape.check(value)
    except ShapeError as exc:
        assert "\n" not in str(exc)


@FAST
@given(data=st.binary(max_size=400))
def test_any_bytes_as_tensors_torch_or_sqlite_give_one_artifact_error(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for read in (lambda: tensors_metadata(path, kinds.SUPERNET_WEIGHTS),
                 lambda: load_torch(path, kinds.CHECKPOINT),
                 lambda: check_sqlite(path, kinds.STUDY, table="studies")):
        try:
            read()
        except ArtifactError as exc:
            assert "\n" not in str(exc)


@FAST
@given(records=st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                        min_size=2, max_size=6),
       torn=st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b))
def test_an_append_after_a_torn_tail_leaves_only_whole_lines(
    tmp_path: Path, records: list[dict[str, int]], torn: bytes
) -> None:
    path = tmp_path / "log.jsonl"
    path.unlink(missing_ok=True)
    append_jsonl(path, records[0])
    with path.open("ab") as handle:
        handle.write(torn)  # a kill (or a full disk) in the middle of an append
    for record in records[1:]:
        append_jsonl(path, record)
    assert list(read_jsonl(path)) == records
    assert path.read_bytes().endswith(b"\n")


def test_non_finite_numbers_in_an_artifact_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "reference.json"
    path.write_text('{"setup": {}, "latency_ms": NaN}')
    with pytest.raises(ArtifactError, match="latency_ms: expected a finite number"):
        load_json(path, kinds.REFERENCE)


def test_resume_after_the_final_checkpoint_trains_no_extra_step(sandbox: Sandbox) -> None:
    """A kill between the last checkpoint of a `--max-steps` run and its weights: `--resume`
    finishes the run without training a step past the limit."""
    import torch

    checkpoint = sandbox.run / "supernet" / "checkpoint.pt"
    (sandbox.run / "supernet" / "weights.safetensors").unlink()
    manifest = json.loads((sandbox.run / "manifest.json").read_text())
    manifest["stages"]["train-supernet"]["status"] = "running"
    (sandbox.run / "manifest.json").write_text(json.dumps(manifest))
    step = int(torch.load(checkpoint, weights_only=True)["step"])
    result = sandbox.invoke("train-supernet", "--run", pristine.RUN, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    stage = json.loads((sandbox.run / "manifest.json").read_text())["stages"]["train-supernet"]
    assert stage["status"] == "done" and stage["summary"]["steps"] == step == 2
    assert int(torch.load(checkpoint, weights_only=True)["step"]) == step
    logged = [json.loads(line)["step"] for line in
              (sandbox.run / "supernet" / "metrics.jsonl").read_text().splitlines()]
    assert max(logged) <= step


@FAST
@given(value=json_values)
def test_written_json_is_strict_json(tmp_path: Path, value: object) -> None:
    """NaN and infinities are written as null (Python's parser would read them, others not)."""
    from nas.artifacts import atomic_write_json

    def refuse(name: str) -> object:
        raise AssertionError(f"{name} written")

    atomic_write_json(tmp_path / "v.json", {"v": value})
    json.loads((tmp_path / "v.json").read_text(), parse_constant=refuse)
    append_jsonl(tmp_path / "v.jsonl", {"v": value})
    for line in (tmp_path / "v.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
