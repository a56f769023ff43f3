from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_space_list_json_names_ofa_mbv3() -> None:
    result = runner.invoke(app, ["space", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["ofa-mbv3"]["num_subnets"] == (81 + 729 + 6561) ** 5


def test_space_list_table() -> None:
    result = runner.invoke(app, ["space", "list"])
    assert result.exit_code == 0 and "ofa-mbv3" in result.output


def test_space_show_json_max_min() -> None:
    args = ["space", "show", "ofa-mbv3", "--num-classes", "10", "--image-size", "32", "--json"]
    largest = json.loads(runner.invoke(app, [*args, "--subnet", "max"]).output)
    smallest = json.loads(runner.invoke(app, [*args, "--subnet", "min"]).output)
    # OFA reference parameter counts (see tests/search_spaces/test_ofa_parity.py)
    assert largest["params"] == 6396570 and smallest["params"] == 2142602
    assert isinstance(largest["macs"], int) and largest["macs"] > smallest["macs"] > 0
    assert len(smallest["blocks"]) == 2 + 10 + 1


def test_space_show_describes_the_network_train_supernet_builds() -> None:
    """At 32 px `nas train-supernet` keeps OFA's strides unless --small-input is given."""
    from types import SimpleNamespace

    from nas.train.config import TrainConfig
    from nas.train.once_for_all import build_space

    args = ["space", "show", "ofa-mbv3", "--num-classes", "10", "--image-size", "32", "--json"]
    shown = json.loads(runner.invoke(app, args).output)
    digits = SimpleNamespace(num_classes=10, channels=3)
    trained = build_space(TrainConfig(image_size=32, resolutions=(32,)), digits)  # type: ignore[arg-type]
    assert shown["macs"] == trained.complexity(trained.largest())["macs"]
    small = json.loads(runner.invoke(app, [*args, "--small-input"]).output)
    assert small["space"]["kwargs"]["small_input"] is True and small["macs"] > 5 * shown["macs"]


def test_space_show_accepts_ofa_format_file(tmp_path: Path) -> None:
    config = {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5, "r": 224}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(config))
    result = runner.invoke(app, ["space", "show", "ofa-mbv3", "--subnet", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["subnet"]["depth"] == [3] * 5 and report["subnet"]["resolution"] == 224


def test_space_show_table() -> None:
    result = runner.invoke(app, ["space", "show", "ofa-mbv3", "--width-mult", "1.2"])
    assert result.exit_code == 0, result.output
    assert "kernel_size" in result.output and "largest" in result.output


def test_bad_subnet_exits_2_with_one_line() -> None:
    result = runner.invoke(app, ["space", "show", "ofa-mbv3", "--subnet", '{"ks": [4]}'])
    assert result.exit_code == 2
    assert "error" in result.output and "Traceback" not in result.output
    bad_value = '{"ks": [4] * 20}'.replace(" * 20", "")
    assert runner.invoke(app, ["space", "show", "ofa-mbv3", "--subnet", bad_value]).exit_code == 2
    missing = runner.invoke(app, ["space", "show", "ofa-mbv3", "--subnet", "no/such/file.json"])
    assert missing.exit_code == 2


def test_bad_space_and_option_exit_2() -> None:
    assert runner.invoke(app, ["space", "show", "ofa-mbv4"]).exit_code == 2
    bad_width = runner.invoke(app, ["space", "show", "ofa-mbv3", "--width-mult", "0.5"])
    assert bad_width.exit_code == 2 and "width_mult" in bad_width.output
