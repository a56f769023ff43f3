"""`nas train-supernet --space darts` options: TrainConfig -> BilevelConfig, checks, latency
tables from the profile store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from nas.artifacts import RunDir, append_jsonl
from nas.config import config_to_dict
from nas.errors import ArtifactError, ConfigError
from nas.profile.store import ProfileStore
from nas.train.bilevel_spaces import search_family
from nas.train.config import TrainConfig, resume_mismatches
from nas.train.darts_adapter import bilevel_config_from, default_latency_source
from nas.train.darts_latency import load_profile_table, profile_blocks_path, toy_latency_table
from nas.train.search_latency import profile_device
from search_spaces.darts.space import DartsSpace

runner = CliRunner()
TINY = ["--space", "darts", "--dataset", "synthetic", "--image-size", "8", "--epochs", "1",
        "--batch-size", "4", "--max-steps", "1", "--quiet"]


def tiny_space(init_channels: int = 4) -> DartsSpace:
    return DartsSpace(init_channels=init_channels, layers=3, num_classes=10, image_size=8)


def write_profile(runs_dir: Path, space: DartsSpace, table: dict[str, float],
                  batch_size: int = 1) -> Path:
    path = profile_blocks_path(runs_dir, space, "cpu")
    setup = {"device": "cpu", "batch_size": batch_size, "threads": 1, "clock": "wall"}
    for key, ms in table.items():
        append_jsonl(path, {"block": key, "latency_ms": ms, "setup": setup})
    return path


def test_darts_options_reach_the_bilevel_config() -> None:
    cfg = TrainConfig(space="darts", method="gdas", init_channels=6, layers=4, tau_max=5.0,
                      tau_min=0.5, arch_lr=1e-3, arch_warmup_epochs=2, select="perturbation")
    config = bilevel_config_from(cfg)
    assert (config.method, config.init_channels, config.layers) == ("gdas", 6, 4)
    assert (config.tau_max, config.tau_min, config.arch_lr) == (5.0, 0.5, 1e-3)
    assert (config.arch_warmup_epochs, config.select) == (2, "perturbation")
    pc = bilevel_config_from(TrainConfig(space="darts", method="pc-darts", partial_channels=2))
    assert pc.partial_channels == 2
    hw = bilevel_config_from(TrainConfig(space="darts", method="fbnet", latency_table="toy",
                                         target_latency=3.0, latency_weight=0.5))
    assert (hw.latency_table, hw.target_latency, hw.latency_weight) == ("toy", 3.0, 0.5)
    # unset options keep the method's (and the space's) defaults; --width-mult still scales
    # the channels
    plain = bilevel_config_from(TrainConfig(space="darts"))
    assert (plain.init_channels, plain.layers, plain.partial_channels) == (None, None, 4)
    sized = search_family("darts").space_options(plain)
    space = DartsSpace(**{key: value for key, value in sized.items() if value is not None})
    assert (space.init_channels, space.layers) == (16, 8)
    assert bilevel_config_from(TrainConfig(space="darts", width_mult=0.5)).init_channels == 8


def test_darts_options_are_refused_where_they_would_do_nothing() -> None:
    with pytest.raises(ConfigError, match="expected --space darts"):
        TrainConfig(layers=3)
    with pytest.raises(ConfigError, match="--method pc-darts"):
        TrainConfig(space="darts", partial_channels=2)
    with pytest.raises(ConfigError, match="fbnet or proxyless"):
        TrainConfig(space="darts", method="gdas", latency_table="toy")
    with pytest.raises(ConfigError, match="argmax or perturbation"):
        TrainConfig(space="darts", select="best")
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(space="darts", init_channels=8, width_mult=0.5)


def test_darts_options_are_resume_keys() -> None:
    base = config_to_dict(TrainConfig(space="darts", init_channels=8))
    assert resume_mismatches(base, config_to_dict(TrainConfig(space="darts"))) == [
        "init_channels"
    ]
    # once-for-all checkpoints written before these keys existed still compare equal
    old = {k: v for k, v in config_to_dict(TrainConfig()).items() if k != "layers"}
    assert resume_mismatches(old, config_to_dict(TrainConfig())) == []


def test_an_ofa_space_with_a_darts_option_is_a_one_line_error(runs_dir: Path) -> None:
    result = runner.invoke(app, ["train-supernet", "--run", "o", "--layers", "3"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--layers" in lines[0] and "--space darts" in lines[0]


def test_help_explains_the_darts_options() -> None:
    result = runner.invoke(app, ["train-supernet", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--init-channels", "--layers", "--partial-channels", "--tau-max", "--tau-min",
                 "--arch-lr", "--arch-warmup-epochs", "--select", "--latency-table",
                 "--target-latency", "--latency-weight"):
        assert flag in result.output
    assert "profile:DEVICE" in result.output


def test_profile_table_is_read_from_the_profile_store(tmp_path: Path) -> None:
    space = tiny_space()
    table = toy_latency_table(space)
    write_profile(tmp_path, space, {k: 9.0 for k in table}, batch_size=8)  # other setup
    path = write_profile(tmp_path, space, table)
    # the folder `nas profile --space darts --space-option init_channels=4 ...` writes
    assert path.parent.parent.parent.name == "darts-init_channels=4-layers=3-8px-cpu"
    assert load_profile_table(tmp_path, space, "cpu") == pytest.approx(table)
    assert profile_device("profile") == "cpu" and profile_device("profile:cuda:1") == "cuda:1"
    assert profile_device("toy") is None and profile_device(None) is None
    with pytest.raises(ArtifactError, match="no per-operation latency table.*"
                       "--space-option init_channels=8 --space-option layers=3"):
        load_profile_table(tmp_path, tiny_space(8), "cpu", run_path=tmp_path / "r")
    # a run's own profile of another width is found but does not cover this network
    other = tiny_space(8)
    run_blocks = ProfileStore(tmp_path / "r", "cpu").blocks_path
    for key, ms in table.items():
        append_jsonl(run_blocks, {"block": key, "latency_ms": ms, "setup": {"batch_size": 1}})
    with pytest.raises(ArtifactError, match="lacks 35 of 35 .*needs c8"):
        load_profile_table(tmp_path / "elsewhere", other, "cpu", run_path=tmp_path / "r")
    with pytest.raises(ArtifactError, match="no per-operation latency table.*nas profile"):
        load_profile_table(tmp_path / "empty", space, "cpu")


def test_default_latency_source_prefers_the_cpu_profile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    space, run = tiny_space(), RunDir(tmp_path, "r")
    with caplog.at_level(logging.WARNING, logger="nas.train.darts_adapter"):
        assert default_latency_source(run, space, resume=False) == "measure"
    assert "timing the DARTS ops on this CPU now" in caplog.text
    write_profile(tmp_path, space, toy_latency_table(space))
    assert default_latency_source(run, space, resume=False) == "profile:cpu"


@pytest.mark.slow
def test_latency_table_profile_runs_a_search_with_the_profiled_table(runs_dir: Path) -> None:
    space = tiny_space()
    table = {key: 0.5 + i / 10 for i, key in enumerate(toy_latency_table(space))}
    write_profile(runs_dir, space, table)
    result = runner.invoke(app, ["train-supernet", "--run", "h", *TINY, "--method", "fbnet",
                                 "--init-channels", "4", "--layers", "3",
                                 "--latency-table", "profile", "--target-latency", "2.0"])
    assert result.exit_code == 0, result.output
    run = runs_dir / "h" / "supernet"
    assert json.loads((run / "latency_table.json").read_text()) == pytest.approx(table)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["latency_table"] == "profile"
    assert summary["target_latency_ms"] == 2.0
    params = sum(p.numel() for p in space.build_supernet().weight_parameters())
    assert summary["supernet"] == {"init_channels": 4, "layers": 3, "params": params}


def test_latency_table_profile_without_a_profile_is_a_one_line_error(runs_dir: Path) -> None:
    result = runner.invoke(app, ["train-supernet", "--run", "m", *TINY, "--method", "proxyless",
                                 "--init-channels", "4", "--layers", "3",
                                 "--latency-table", "profile"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--space-option init_channels=4" in lines[0]


@pytest.mark.slow
def test_layers_and_init_channels_change_the_searched_supernet(runs_dir: Path) -> None:
    counts = []
    for name, channels, layers in (("a", "4", "3"), ("b", "6", "4")):
        result = runner.invoke(app, ["train-supernet", "--run", name, *TINY,
                                     "--init-channels", channels, "--layers", layers])
        assert result.exit_code == 0, result.output
        summary = json.loads((runs_dir / name / "supernet" / "summary.json").read_text())
        assert summary["supernet"]["layers"] == int(layers)
        counts.append(summary["supernet"]["params"])
    assert counts[0] < counts[1]


@pytest.mark.slow
def test_resume_keeps_the_latency_table_the_search_started_with(tmp_path: Path) -> None:
    from nas.train.bilevel import run_bilevel_search
    from tests.nas.train.test_bilevel import tiny_config, tiny_splits

    space = tiny_space()
    table = toy_latency_table(space)
    write_profile(tmp_path, space, table)
    run = RunDir(tmp_path, "k")
    config = tiny_config(method="fbnet", latency_table="profile", max_steps=1)
    run_bilevel_search(config, run, splits=tiny_splits(), device="cpu")
    write_profile(tmp_path, space, {k: 2 * v for k, v in table.items()})  # profile grew
    again = tiny_config(method="fbnet", latency_table="profile", max_steps=2)
    result = run_bilevel_search(again, run, splits=tiny_splits(), device="cpu", resume=True)
    assert result["steps"] == 2
    kept = json.loads(run.sub("supernet", "latency_table.json").read_text())
    assert kept == pytest.approx(table)


def test_an_unknown_latency_table_names_the_valid_sources(tmp_path: Path) -> None:
    from nas.train.search_latency import load_latency_table

    with pytest.raises(ArtifactError, match="toy, measure, profile or profile:DEVICE"):
        load_latency_table(tmp_path / "profil")


@pytest.mark.slow
def test_resume_reuses_the_searchs_options_and_refuses_changed_ones(runs_dir: Path) -> None:
    first = runner.invoke(app, ["train-supernet", "--run", "g", *TINY, "--method", "gdas",
                                "--init-channels", "4", "--layers", "3", "--tau-max", "4"])
    assert first.exit_code == 0, first.output
    changed = runner.invoke(app, ["train-supernet", "--run", "g", "--resume", "--layers", "4"])
    assert changed.exit_code == 2
    assert "resume" in changed.output and "layers" in changed.output, changed.output
    resumed = runner.invoke(app, ["train-supernet", "--run", "g", "--resume", "--max-steps", "2",
                                  "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((runs_dir / "g" / "supernet" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["config"]["tau_max"] == 4.0
    assert summary["supernet"]["init_channels"] == 4
