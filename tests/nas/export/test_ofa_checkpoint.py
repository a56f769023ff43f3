"""`nas export --format ofa` as a library: a run's supernet written as Once-for-All's checkpoint.

The strongest check without the `ofa` package: a run imported from OFA's own file (the
committed fixtures, OFA's key names and values) exports back to that very state dict, tensor
for tensor, bit for bit. Logit parity with OFA's classes is in tests/nas/test_ofa_reference.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas.artifacts import RunDir
from nas.errors import ConfigError
from nas.export.ofa_checkpoint import (
    META_FILE,
    RoundTripError,
    check_round_trip,
    export_ofa_checkpoint,
)
from nas.supernet import Supernet
from nas.supernet.ofa_import import import_ofa_supernet, read_ofa_state
from nas.supernet.weights import load_trained_supernet, save_weights
from search_spaces import create_space
from tests.fixtures.ofa.fixture import MBV3, RESNET, load_ofa_fixture

NET_IDS = {RESNET: "ofa_resnet50_d0-1-2_e0.2-0.25-0.35_w0.1625-0.2-0.25",
           MBV3: "ofa_mbv3_d234_e346_k357_w1.0"}


def imported_run(tmp_path: Path, name: str) -> tuple[RunDir, dict[str, torch.Tensor]]:
    state = load_ofa_fixture(name).state
    path = tmp_path / name
    torch.save({"state_dict": state}, path)
    run = RunDir(tmp_path / "runs", "imported")
    import_ofa_supernet(path, run, dataset="synthetic")
    return run, state


def hand_made_run(tmp_path: Path, name: str, net: Supernet) -> RunDir:
    """A run holding `net` as if `nas train-supernet` had trained it."""
    run = RunDir(tmp_path / "runs", name)
    run.update_manifest(space=net.space.spec())
    save_weights(run, net, space_spec=net.space.spec(), train_config={"dataset": "synthetic"})
    return run


@pytest.mark.parametrize("name", [RESNET, pytest.param(MBV3, marks=pytest.mark.slow)])
def test_an_imported_run_exports_back_to_ofas_own_file(tmp_path: Path, name: str) -> None:
    run, original = imported_run(tmp_path, name)
    result = export_ofa_checkpoint(run)
    assert result.out_dir == run.path / "export" / "ofa" and result.file.name == NET_IDS[name]
    saved = torch.load(result.file, weights_only=True)
    assert list(saved) == ["state_dict"]
    written = saved["state_dict"]
    assert list(written) == list(original)  # OFA's names, in OFA's order
    for key, tensor in original.items():
        assert written[key].dtype == tensor.dtype and torch.equal(written[key], tensor), key


def test_the_sidecar_and_manifest_say_what_was_written(tmp_path: Path) -> None:
    run, _ = imported_run(tmp_path, RESNET)
    result = export_ofa_checkpoint(run, out_dir=tmp_path / "elsewhere", argv=["nas", "export"])
    assert result.out_dir == tmp_path / "elsewhere" and not (run.path / "export").exists()
    meta = json.loads((result.out_dir / META_FILE).read_text())
    assert meta["ofa_class"] == "OFAResNets" and meta["round_trip"]["passed"]
    assert meta["ofa_kwargs"]["width_mult_list"] == pytest.approx([0.1625, 0.2, 0.25])
    assert meta["weights_from"].startswith(f"imported from {RESNET} (OFAResNets, sha256 ")
    assert "width_scale 0.25" in meta["weights_from"]
    assert "OFAResNets(n_classes=1000" in (result.out_dir / "README.md").read_text()
    stage = run.manifest()["stages"]["export-ofa"]
    assert stage["status"] == "done" and stage["summary"]["sha256"] == meta["sha256"]
    assert not list(result.out_dir.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_a_supernet_trained_here_round_trips_exactly(tmp_path: Path) -> None:
    space = create_space("ofa-resnet50", num_classes=10, width_scale=0.25, resolutions=[64],
                         small_input=False)
    net = space.build_supernet()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    run = hand_made_run(tmp_path, "trained", net)
    result = export_ofa_checkpoint(run)
    assert result.meta["weights_from"] == "trained in run trained"
    back = RunDir(tmp_path / "runs", "back")
    import_ofa_supernet(result.file, back, resolutions=[64], dataset="synthetic")
    check_round_trip(load_trained_supernet(run).state_dict(),
                     load_trained_supernet(back).state_dict())
    assert read_ofa_state(result.file)["classifier.linear.linear.weight"].shape == (10, 512)


def test_a_small_input_supernet_has_no_ofa_counterpart(tmp_path: Path) -> None:
    space = create_space("ofa-mbv3", num_classes=10, resolutions=[32], small_input=True)
    run = hand_made_run(tmp_path, "cifar", space.build_supernet())
    with pytest.raises(ConfigError, match="small_input=True"):
        export_ofa_checkpoint(run)
    assert "stages" not in run.manifest() and not (run.path / "export").exists()


def test_another_space_is_refused_before_writing(tmp_path: Path) -> None:
    space = create_space("nb201", num_classes=10)
    run = hand_made_run(tmp_path, "nb", space.build_supernet())
    with pytest.raises(ConfigError, match="ofa-mbv3 and ofa-resnet50 supernets only"):
        export_ofa_checkpoint(run)
    assert not (run.path / "export").exists()


def test_a_tensor_that_reads_back_different_is_named() -> None:
    original = {"a": torch.zeros(2), "b": torch.ones(2)}
    check_round_trip(original, {k: v.clone() for k, v in original.items()})
    with pytest.raises(RoundTripError, match="tensor 'b' reads back different"):
        check_round_trip(original, {"a": torch.zeros(2), "b": torch.tensor([1.0, 1.0001])})
    with pytest.raises(RoundTripError, match="tensor 'b' is in only one"):
        check_round_trip(original, {"a": torch.zeros(2)})


def test_an_exports_card_lists_the_import_command(tmp_path: Path) -> None:
    from nas.export.from_run import _commands

    run = RunDir(tmp_path / "runs", "r")
    run.begin_stage("import-supernet", config={},
                    argv=["/venv/bin/nas", "import-supernet", "ofa", "w1.0", "--run", "r"])
    run.end_stage("import-supernet")
    assert _commands(run, None, ["nas", "export", "--run", "r"]) == [
        "nas import-supernet ofa w1.0 --run r", "nas export --run r"]
