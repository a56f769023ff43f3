"""Names typed by users never reach outside their folder: tags, devices, runs, space options,
export folders; checked in one place (`nas.names`), property-based where it fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli import app
from nas.errors import ConfigError
from nas.names import check_name, device_dirname, options_label
from search_spaces import parse_space_options
from search_spaces.nb201 import to_string
from search_spaces.nb201.synthetic import synthetic_table
from tests.faults.conftest import assert_clean_failure

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "nb201.jsonl"
    path.write_text("".join(json.dumps({**row, "arch": to_string(row["arch"])}) + "\n"
                            for row in synthetic_table(0)[:64]))
    return path


@pytest.mark.parametrize("tag", ["../../x", "/abs/path", "..", ".hidden", "a/b", "x" * 200])
def test_search_tags_stay_in_the_run(table: Path, tmp_path: Path, tag: str) -> None:
    result = runner.invoke(app, ["search", "--oracle", str(table), "--space", "nb201",
                                 "--budget", "4", "--tag", tag,
                                 "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="--tag")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["..", "../up", ".", ".hidden"])
def test_device_names_stay_in_the_profile_folder(tmp_path: Path, device: str) -> None:
    measurements = tmp_path / "m.jsonl"
    measurements.write_text(json.dumps({"arch": to_string(synthetic_table(0)[0]["arch"]),
                                        "latency_ms": 1.0}) + "\n")
    result = runner.invoke(app, ["profile", "import", str(measurements), "--device", device,
                                 "--space", "nb201", "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="--device")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("run", ["..", "../x", "/abs", ".x"])
def test_run_names_stay_in_the_runs_folder(tmp_path: Path, run: str) -> None:
    result = runner.invoke(app, ["train-supernet", "--run", run, "--max-steps", "1",
                                 "--runs-dir", str(tmp_path / "runs")])
    assert_clean_failure(result, mentions="run name")
    assert not (tmp_path / "runs").exists()


def test_relative_export_folders_stay_below_the_working_folder(tmp_path: Path) -> None:
    from nas.names import check_relative_out

    with pytest.raises(ConfigError, match="below the current folder"):
        check_relative_out(Path("../elsewhere"))
    assert check_relative_out(Path("out/x")) == Path("out/x")
    assert check_relative_out(tmp_path / ".." / "y").is_absolute()  # the user's explicit choice


def test_space_option_lists_and_short_folder_names() -> None:
    options = parse_space_options(["resolutions=160,192", "init_channels=8", "name=abc"])
    assert options == {"resolutions": [160, 192], "init_channels": 8, "name": "abc"}
    assert options_label({"resolutions": [160, 192]}) == "-resolutions=160,192"
    long = options_label({"resolutions": list(range(100, 400, 4))})
    assert long.startswith("-opts-") and len(long) < 20
    assert options_label({"a": "../../x"}).startswith("-opts-")
    with pytest.raises(ConfigError, match="finite"):
        parse_space_options(["width=NaN"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_a_checked_name_is_one_harmless_path_component(text: str) -> None:
    try:
        name = check_name(text, "name")
    except ConfigError:
        return
    path = Path("/base") / name
    assert path.parent == Path("/base") and not name.startswith(".")
    assert Path(name).name == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_a_device_folder_never_escapes(text: str) -> None:
    try:
        folder = device_dirname(text)
    except ConfigError:
        return
    assert (Path("/p") / folder).parent == Path("/p") and folder not in (".", "..")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=30),
                                                       st.lists(st.integers(), max_size=8)),
                       max_size=4))
def test_option_labels_are_safe_folder_parts(options: dict[str, object]) -> None:
    label = options_label(options)
    # a part of a folder name (`<space><label>-<side>px-<device>`): no separator, short
    assert "/" not in label and "\\" not in label and len(label) <= 40
