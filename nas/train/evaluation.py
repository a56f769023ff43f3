"""Evaluation of a trained run's subnets (`nas eval`): data and space rebuilt from the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.arch import arch_id, parse_arch_argument
from nas.artifacts import RunDir
from nas.data import DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.runtime import resolve_device
from nas.train.checkpoint import load_trained_supernet, read_weights_metadata, weights_path
from search_spaces import SearchSpace

SPLITS = ("val", "test")


def resolve_subnet(space: SearchSpace, text: str) -> dict[str, Any]:
    """`max`, `min`, inline JSON or a JSON file, as a canonical arch of `space`."""
    if text == "max":
        return space.largest()
    if text == "min":
        return space.smallest()
    return space.normalize(parse_arch_argument(text))


def run_dataset(train_config: dict[str, Any]) -> DatasetSplits:
    """The dataset (and its split) the run was trained on."""
    data_dir = train_config.get("data_dir")
    return load_dataset(
        str(train_config.get("dataset", "digits")),
        data_dir=Path(data_dir) if data_dir else None,
        image_size=train_config.get("image_size"),
        seed=int(train_config.get("seed", 0)),
    )


def evaluate_run_subnet(
    run: RunDir, subnet: str, *, split: str = "val", device: str = "cpu", batch_size: int = 256
) -> dict[str, Any]:
    """Top-1, loss and size of one subnet of `run`'s supernet, after BN recalibration.

    Returns:
        `{"arch", "arch_id", "split", "top1", "loss", "n", "params", "macs"}`.
    """
    from nas.evaluate import evaluate_subnet

    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got '{split}'")
    torch_device = resolve_device(device)
    meta = read_weights_metadata(weights_path(run))
    net = load_trained_supernet(run, torch_device)
    arch = resolve_subnet(net.space, subnet)
    train_config = meta["train_config"]
    splits = run_dataset(train_config)
    metrics = evaluate_subnet(
        net, arch, splits, split=split, batch_size=batch_size,
        calibration_batches=int(train_config.get("bn_calibration_batches", 10)),
        seed=int(train_config.get("seed", 0)), device=torch_device,
    )
    return {
        "run": run.name,
        "arch": arch,
        "arch_id": arch_id(arch),
        "split": split,
        **{key: metrics[key] for key in ("top1", "loss", "n")},
        **net.space.complexity(arch),
    }
