"""A run's trained supernet, loaded once: network, space, training config, data and settings.

Search, `nas eval`, export and fine-tuning all start from `TrainedSupernet.load(run, device)`
instead of each repeating the load sequence (weights, metadata, dataset, calibration settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas.arch import Arch, arch_id
from nas.artifacts import RunDir
from nas.data import DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.runtime import resolve_device
from nas.supernet.base import Supernet
from nas.supernet.evaluate import (
    EvalBatches,
    activate_and_recalibrate,
    eval_batches,
    score_subnet,
)
from nas.supernet.weights import load_weights, read_weights_metadata, weights_path

if TYPE_CHECKING:
    from search_spaces.base import SearchSpace

EVAL_SPLITS = ("val", "test")  # `nas eval` never scores the data BN is calibrated on


@dataclass(frozen=True)
class EvalSettings:
    """How a run's subnets are evaluated: on which data, with what BN calibration.

    Read from the run's training config by `from_train_config`, the only place that does.
    The defaults are `nas train-supernet`'s; they matter only for weights saved with a partial
    config (hand-made runs, tests), since training records every option.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None  # None: the dataset's own size
    seed: int = 0  # decides the dataset split and the calibration images
    calibration_batches: int = 10  # training batches for BN recalibration
    batch_size: int = 256  # evaluation batch size (the config's `eval_batch_size`)

    @classmethod
    def from_train_config(cls, config: Mapping[str, Any]) -> EvalSettings:
        default = cls()
        image_size = config.get("image_size")
        return cls(
            dataset=str(config.get("dataset", default.dataset)),
            data_dir=config.get("data_dir") or None,
            image_size=None if image_size is None else int(image_size),
            seed=int(config.get("seed", default.seed)),
            calibration_batches=int(
                config.get("bn_calibration_batches", default.calibration_batches)
            ),
            batch_size=int(config.get("eval_batch_size") or default.batch_size),
        )

    def load_dataset(self) -> DatasetSplits:
        """The dataset the run was trained on, split as it was split for training."""
        return load_dataset(
            self.dataset,
            data_dir=Path(self.data_dir) if self.data_dir else None,
            image_size=self.image_size,
            seed=self.seed,
        )


@dataclass(frozen=True)
class TrainedSupernet:
    """The trained supernet of a run with what evaluating its subnets needs.

    Made by `load`. `net` stays in eval mode; `calibrated` changes its BN statistics in place
    (load again for untouched weights). `splits` is the run's dataset, rebuilt on first use.
    """

    run: RunDir
    net: Supernet
    train_config: Mapping[str, Any]
    settings: EvalSettings
    device: torch.device
    # evaluation inputs by (split, resolution, batch size), made on first use
    _inputs: dict[tuple[str, int | None, int, int | None], EvalBatches] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, run: RunDir, device: str | torch.device = "cpu") -> TrainedSupernet:
        """Read `run`'s `supernet/weights.safetensors` onto `device` (an already checked one).

        Raises:
            ArtifactError: the run has no trained supernet.
            IncompatibleArtifactError: the weights were made for another space version or layout.
        """
        path = weights_path(run)
        meta = read_weights_metadata(path)
        config = dict(meta["train_config"])
        net = load_weights(path, meta, device=device)
        return cls(run, net, config, EvalSettings.from_train_config(config), torch.device(device))

    def with_calibration(self, batches: int) -> TrainedSupernet:
        """The same network and data, evaluated with `batches` BN-recalibration batches."""
        settings = replace(self.settings, calibration_batches=batches)
        other = replace(self, settings=settings, _inputs={})
        if "splits" in self.__dict__:  # the same data: not loaded again
            other.__dict__["splits"] = self.__dict__["splits"]
        return other

    @property
    def space(self) -> SearchSpace:
        return self.net.space

    @cached_property
    def splits(self) -> DatasetSplits:
        return self.settings.load_dataset()

    def evaluate(
        self, arch: Arch, *, split: str = "val", batch_size: int = 256,
        max_images: int | None = None,
    ) -> dict[str, Any]:
        """`evaluate_subnet` with the run's data and calibration settings; the net is untouched.

        `max_images`: score on the split's first images only (see `eval_batches`).

        Returns:
            `{"top1": percent in [0, 100], "loss": mean cross-entropy, "n": images evaluated}`.
        """
        arch = self.space.normalize(arch)
        resolution = self.net.input_resolution(arch)
        key = (split, resolution, batch_size, max_images)
        inputs = self._inputs.get(key)
        if inputs is None:  # normalised and resized once per resolution, not per subnet
            inputs = eval_batches(self.splits, split=split, resolution=resolution,
                                  calibration_batches=self.settings.calibration_batches,
                                  batch_size=batch_size, seed=self.settings.seed,
                                  device=self.device, max_images=max_images)
            self._inputs[key] = inputs
        return score_subnet(self.net, arch, inputs, device=self.device)

    def calibrated(
        self,
        arch: Arch,
        *,
        batch_size: int,
        calibration_batches: int | None = None,
        seed: int | None = None,
        resolution: int | None = None,
    ) -> Supernet:
        """The supernet itself with `arch` active and its BN statistics re-estimated for it.

        What a distillation teacher needs (and what export does to the supernet it is given).

        Args:
            batch_size: calibration batch size.
            calibration_batches: default: the run's.
            seed: picks the calibration images; default: the run's.
            resolution: image side to calibrate at; default: the arch's own.
        """
        return activate_and_recalibrate(
            self.net, arch, self.splits,
            num_batches=(self.settings.calibration_batches if calibration_batches is None
                         else calibration_batches),
            batch_size=batch_size, seed=self.settings.seed if seed is None else seed,
            device=self.device, resolution=resolution,
        )


def evaluate_run_subnet(
    run: RunDir, subnet: str, *, split: str = "val", device: str = "cpu", batch_size: int = 256
) -> dict[str, Any]:
    """Top-1, loss and size of one subnet of `run`'s supernet, after BN recalibration.

    Args:
        subnet: `max`, `min`, inline JSON or a JSON file (see `SearchSpace.subnet_from_text`).

    Returns:
        `{"run", "arch", "arch_id", "split", "top1", "loss", "n", "params", "macs"}`.
    """
    if split not in EVAL_SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(EVAL_SPLITS)}, got '{split}'")
    trained = TrainedSupernet.load(run, resolve_device(device))
    arch = trained.space.subnet_from_text(subnet)
    metrics = trained.evaluate(arch, split=split, batch_size=batch_size)
    return {
        "run": run.name,
        "arch": arch,
        "arch_id": arch_id(arch),
        "split": split,
        **{key: metrics[key] for key in ("top1", "loss", "n")},
        **trained.space.complexity(arch),
    }
