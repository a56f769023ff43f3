"""Fine-tune an exported subnet on its run's data, optionally distilling from the supernet.

Weights inherited from a supernet are good but not the best the architecture can reach (OFA
fine-tunes its chosen subnets for a few epochs). `finetune_export` trains the static network of
an export folder with SGD + cosine learning rate, optionally adding a KD term from the
supernet's largest subnet (with recalibrated BN), then exports the result into a new folder
through the same writers and parity checks as `nas export`.

Training runs in the shared loop of `nas.train.loop`: `checkpoint.pt` in the output folder is
written after every epoch, every 2 minutes and on SIGINT/SIGTERM; running again with the same
options continues from it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.artifact_kinds import EXPORT_METRICS
from nas.artifacts import RunDir, read_json
from nas.config import check_finite, config_to_dict
from nas.errors import ArtifactError, ConfigError
from nas.locks import stage_lock
from nas.train.loop import DEFAULT_CHECKPOINT_MINUTES, LoopOptions, StepLog, TrainingLoop
from nas.train.sandwich import soft_cross_entropy
from nas.train.standalone import StandaloneTrainer, top1_of

if TYPE_CHECKING:
    from nas.supernet.trained import TrainedSupernet

logger = logging.getLogger(__name__)

LOG = "finetune.jsonl"  # one line per epoch (`Finetuner.end_epoch`), beside checkpoint.pt


@dataclass(frozen=True)
class FinetuneConfig:
    """Options of `nas finetune`."""

    epochs: int = 5
    lr: float = 0.01  # peak lr at batch 64 (a tenth of supernet training's: weights are good)
    momentum: float = 0.9
    weight_decay: float = 3e-5
    batch_size: int = 64
    label_smoothing: float = 0.1
    distill: bool = False  # KD from the supernet's largest subnet
    distill_weight: float = 1.0
    calib_batches: int = 10  # BN recalibration of the teacher
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(
                f"expected epochs >= 1 and batch_size >= 1, got {self.epochs}, {self.batch_size}"
            )
        if self.lr <= 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")


@dataclass(frozen=True)
class FinetuneResult:
    out_dir: Path
    val_top1_before: float
    val_top1_after: float
    epochs_run: int
    metrics: dict[str, Any]


def _source_run(export_dir: Path, runs_dir: Path | None) -> RunDir:
    """The run an export came from (recorded in its metrics.json provenance)."""
    metrics = read_json(export_dir / "metrics.json", EXPORT_METRICS)
    provenance = metrics.get("provenance") or {}
    name = provenance.get("run")
    if not name:
        raise ArtifactError(
            f"{export_dir / 'metrics.json'}: no source run recorded; fine-tuning needs the run's "
            "data (export with `nas export --run NAME`)"
        )
    root = runs_dir or Path(provenance.get("runs_dir") or "runs")
    return RunDir(root, str(name)).require()


def _teacher(source: TrainedSupernet, cfg: FinetuneConfig, resolution: int) -> nn.Module:
    """The supernet's largest subnet, BN recalibrated at the student's input side."""
    teacher = source.calibrated(
        source.space.largest(), batch_size=cfg.batch_size, calibration_batches=cfg.calib_batches,
        seed=cfg.seed, resolution=resolution,
    )
    return teacher.eval()


def finetune_export(
    export_dir: Path,
    cfg: FinetuneConfig,
    *,
    out_dir: Path | None = None,
    runs_dir: Path | None = None,
    on_step: Callable[[StepLog], None] | None = None,
    argv: list[str] | None = None,
    wait: bool = False,
) -> FinetuneResult:
    """Fine-tune the pytorch format of `export_dir` and export it to `out_dir`.

    Args:
        export_dir: a folder written by `nas export` (needs the pytorch format).
        cfg: options.
        out_dir: where the fine-tuned export goes (default `export_dir/finetuned/`); also
            holds the resume checkpoint and `finetune.jsonl`.
        runs_dir: where the source run lives (default: as recorded at export).
        on_step: progress callback (an epoch's last step carries its record in `epoch_end`).
        argv: the command line, for the model card.
        wait: queue behind another fine-tune into `out` instead of failing.
    """
    out = out_dir or export_dir / "finetuned"
    with stage_lock(out, "finetune", wait=wait, hint="or use another --out folder"):
        return _finetune(export_dir, cfg, out, runs_dir, on_step, argv)


def _finetune(
    export_dir: Path, cfg: FinetuneConfig, out: Path, runs_dir: Path | None,
    on_step: Callable[[StepLog], None] | None, argv: list[str] | None,
) -> FinetuneResult:
    from nas.data import BatchLoader
    from nas.export.export import export_model
    from nas.export.formats import FORMATS
    from nas.export.from_run import timing_setups
    from nas.export.load import load_exported, read_arch_json, require_complete
    from nas.supernet.trained import TrainedSupernet

    require_complete(export_dir)
    meta = read_arch_json(export_dir)
    source_run = _source_run(export_dir, runs_dir)
    source = TrainedSupernet.load(source_run, cfg.device)
    # timed with each device's profiled threads, as the export fine-tuned from was
    timing = timing_setups(source_run, source.space)
    splits = source.splits
    resolution = int(meta["input"]["shape"][-1])
    device = torch.device(cfg.device)
    model = load_exported(export_dir, device=cfg.device, fuse_bn=False)  # trainable: BN kept
    before = top1_of(model, splits, "val", resolution=resolution, device=device)
    teacher = _teacher(source, cfg, resolution) if cfg.distill else None
    loader = BatchLoader.for_splits(splits, "train", batch_size=cfg.batch_size, device=device,
                                    seed=cfg.seed, train=True)
    trainer = Finetuner(model, teacher, loader, splits, cfg, resolution)
    # an epoch can take minutes: checkpoint by time too, and on SIGINT/SIGTERM
    options = LoopOptions(checkpoint_seconds=60 * DEFAULT_CHECKPOINT_MINUTES, save_on_signal=True)
    loop = TrainingLoop(trainer, out, options=options, on_step=on_step,
                        label=f"the fine-tune in {out}", elsewhere="use another --out folder",
                        log_name=LOG)
    state = loop.load(resume=None)  # rerunning with the same options resumes
    trained_before = 0 if state is None else loop.epochs_done(state["position"])
    epochs_run = loop.run(state).epochs_done - trained_before
    model.cpu().eval()
    report = export_model(
        model, out, meta={k: meta[k] for k in ("builder", "space", "arch", "complexity",
                                               "builder_kwargs") if k in meta},
        reference=model, splits=splits, formats=_formats_of(meta, FORMATS), resolution=resolution,
        provenance={**_provenance(export_dir), "finetuned_from": str(export_dir),
                    "finetune": config_to_dict(cfg),
                    "commands": [*_provenance(export_dir).get("commands", []),
                                 *([" ".join(["nas", *argv[1:]])] if argv else [])]},
        # same architecture, so the run's latency predictions still apply
        predicted_latency=(_source_metrics(export_dir).get("latency") or {}).get("predicted"),
        latency_devices=tuple(timing), latency_setups=timing,
        extra={"finetune": {"val_top1_before": before, "epochs": cfg.epochs}},
    )
    after = float(report.metrics["accuracy"]["val_top1"] or 0.0)
    return FinetuneResult(out, before, after, epochs_run, report.metrics)


def _formats_of(meta: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    """The formats the source export was written in (the fine-tuned one gets the same)."""
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        return default
    return tuple(f for f in default if f in files)


def _source_metrics(export_dir: Path) -> dict[str, Any]:
    metrics = read_json(export_dir / "metrics.json", EXPORT_METRICS)
    return dict(metrics) if isinstance(metrics, dict) else {}


def _provenance(export_dir: Path) -> dict[str, Any]:
    return dict(_source_metrics(export_dir).get("provenance") or {})


class Finetuner(StandaloneTrainer):
    """Trains an exported network with the stand-alone recipe, optionally distilling."""

    kind = "finetune"
    # a fine-tune resumes only with exactly the options it started with
    resume_keys = tuple(f.name for f in dataclasses.fields(FinetuneConfig))
    config: FinetuneConfig

    def __init__(
        self, model: nn.Module, teacher: nn.Module | None, loader: Any, splits: Any,
        cfg: FinetuneConfig, resolution: int,
    ) -> None:
        super().__init__(model, loader, splits, cfg, resolution)
        self.teacher = teacher

    def extra_loss(self, images: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """KD from the teacher's softened predictions (cross-entropy to its softmax)."""
        if self.teacher is None:
            return None
        with torch.no_grad():
            target = F.softmax(self.teacher(images), dim=1)
        return self.config.distill_weight * soft_cross_entropy(logits, target)
