"""`nas train-supernet --space darts`: map the supernet-training options onto a bilevel search.

The training command's `TrainConfig` describes once-for-all training; the options that carry
over (dataset, epochs, batch size, seed, steps, logging) are taken from it, and its method is
used when it names a DARTS-family method (anything else means first-order DARTS). Options
whose OFA defaults differ from DARTS' (learning rate, weight decay) are only taken when the
user changed them. `--width-mult` scales the initial channels (16 x width_mult) for quick
searches; other DARTS options keep `BilevelConfig`'s defaults when the search runs through
this command (the library entry point is `nas.train.bilevel.run_bilevel_search`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas.artifacts import RunDir
from nas.config import config_to_dict
from nas.data import load_dataset
from nas.train.bilevel import METHODS, BilevelConfig, run_bilevel_search

if TYPE_CHECKING:
    from nas.train.config import TrainConfig
    from nas.train.run import TrainSummary

_CARRIED = ("epochs", "batch_size", "seed", "max_steps", "checkpoint_every", "log_every",
            "eval_batch_size")


def bilevel_config_from(cfg: TrainConfig, **overrides: Any) -> BilevelConfig:
    """The `BilevelConfig` implied by a `TrainConfig` (plus explicit overrides)."""
    from nas.train.config import TrainConfig

    defaults = TrainConfig()
    values: dict[str, Any] = {key: getattr(cfg, key) for key in _CARRIED if hasattr(cfg, key)}
    values["method"] = cfg.method if cfg.method in METHODS else "darts"
    for key in ("lr", "weight_decay", "momentum", "grad_clip"):
        if getattr(cfg, key, None) is not None and getattr(cfg, key) != getattr(defaults, key):
            values[key] = getattr(cfg, key)
    width_mult = getattr(cfg, "width_mult", None)
    if width_mult:
        # --width-mult scales the cells' channels (16 at 1.0), kept even for factorized reduce
        values["init_channels"] = max(2, 2 * round(8 * float(width_mult)))
    values.update(overrides)
    return BilevelConfig(**values)


def train_darts(cfg: TrainConfig, run: RunDir, *, resume: bool,
                device: torch.device) -> TrainSummary:
    """Run a DARTS-family search for `nas train-supernet --space darts`."""
    from nas.train.run import STAGE, TrainSummary

    config = bilevel_config_from(cfg)
    data_dir = None if cfg.data_dir is None else Path(cfg.data_dir)
    splits = load_dataset(cfg.dataset, data_dir=data_dir, image_size=cfg.image_size,
                          seed=cfg.seed)
    run.begin_stage(STAGE, config={**config_to_dict(config), "space": "darts",
                                   "dataset": cfg.dataset}, seed=cfg.seed, device=str(device))
    started = time.perf_counter()
    try:
        result = run_bilevel_search(config, run, splits=splits, device=device, resume=resume)
    except BaseException:
        run.end_stage(STAGE, status="interrupted")
        raise
    seconds = time.perf_counter() - started
    images = result["steps"] * config.batch_size * 2
    summary = TrainSummary(
        steps=int(result["steps"]), completed=bool(result["completed"]), seconds=seconds,
        images_per_s=images / max(seconds, 1e-9),
        val={"derived": {"top1": 100.0 * float(result["val_acc"])}},
    )
    run.end_stage(STAGE, summary={**summary.as_dict(), "genotype": result["genotype"]})
    return summary
