"""`nas train-supernet --space darts`: map the supernet-training options onto a bilevel search.

The training command's `TrainConfig` describes once-for-all training; the options that carry
over (dataset, epochs, batch size, seed, steps, logging) are taken from it, and its method is
used when it names a DARTS-family method (anything else means first-order DARTS). Options
whose OFA defaults differ from DARTS' (learning rate, weight decay) are only taken when the
user changed them. The DARTS options (`--init-channels`, `--layers`, `--partial-channels`,
`--tau-max/min`, `--arch-lr`, `--arch-warmup-epochs`, `--select`, `--latency-table`,
`--target-latency`, `--latency-weight`) map one to one onto `BilevelConfig`; left unset, the
method's default applies. `--width-mult` still scales the initial channels (16 x width_mult).

Hardware-aware methods (fbnet, proxyless) without `--latency-table` use the per-op table
`nas profile --space darts --device cpu` measured, when it covers the search network, else
they time the ops on this CPU before searching (`measure`); `toy` stays selectable.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas.artifacts import RunDir, read_json
from nas.config import config_to_dict
from nas.data import load_dataset
from nas.train.bilevel import METHODS, BilevelConfig, run_bilevel_search
from search_spaces.darts.space import DartsSpace

if TYPE_CHECKING:
    from nas.train.config import TrainConfig
    from nas.train.run import TrainSummary

_CARRIED = ("epochs", "batch_size", "seed", "max_steps", "checkpoint_every", "log_every",
            "eval_batch_size")
# TrainConfig fields of the same name and meaning in BilevelConfig (None: keep its default)
_DARTS = ("init_channels", "layers", "partial_channels", "tau_max", "tau_min", "arch_lr",
          "arch_warmup_epochs", "select", "latency_table", "target_latency", "latency_weight")
logger = logging.getLogger(__name__)


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
    for key in _DARTS:
        if getattr(cfg, key, None) is not None:
            values[key] = getattr(cfg, key)
    values.update(overrides)
    return BilevelConfig(**values)


def _saved_search_config(run: RunDir) -> dict[str, Any] | None:
    """The config the run's supernet stage recorded when it started, if any."""
    from nas.train.run import STAGE

    path = run.path / "config" / f"{STAGE}.json"
    saved = read_json(path) if path.is_file() else None
    return saved if isinstance(saved, dict) else None


def saved_train_values(run: RunDir) -> dict[str, Any] | None:
    """The `TrainConfig` values a DARTS search of `run` was started with (None: the run has
    no DARTS search), so `--resume` needs no options repeated.

    Method-specific options are only taken for their method, since `TrainConfig` refuses
    them elsewhere.
    """
    from nas.train.config import DARTS_OPTIONS, METHOD_OPTIONS

    saved = _saved_search_config(run)
    if saved is None or saved.get("space") != "darts":
        return None
    keys = (*_CARRIED, "space", "dataset", "data_dir", "image_size", "method", "lr",
            "weight_decay", "momentum", "grad_clip")
    values = {key: saved[key] for key in keys if key in saved}
    for key in DARTS_OPTIONS:
        if key in saved and saved["method"] in METHOD_OPTIONS.get(key, (saved["method"],)):
            values[key] = saved[key]
    return values


def default_latency_source(run: RunDir, space: DartsSpace, *, resume: bool) -> str:
    """`profile:cpu` when `nas profile` measured the ops of this network on the CPU, else
    `measure` (time them now); a resumed run keeps the source it started with."""
    from nas.errors import ArtifactError
    from nas.train.darts_latency import load_profile_table

    saved = _saved_search_config(run) if resume else None
    source = (saved or {}).get("latency_table")
    if isinstance(source, str):
        return source
    try:
        load_profile_table(run.root, space, "cpu", run_path=run.path)
    except ArtifactError as exc:
        logger.warning("no usable per-op latency profile (%s); timing the DARTS ops on this "
                       "CPU now (--latency-table measure)", exc)
        return "measure"
    logger.info("latency table: the cpu profile measured by `nas profile --space darts`")
    return "profile:cpu"


def _check_start(run: RunDir, config: BilevelConfig, *, resume: bool) -> None:
    """Refuse a resume with changed options, or a fresh start over a search, before anything
    is written: the run's saved options are what a later `--resume` starts from."""
    from nas.errors import ConfigError
    from nas.train.bilevel import RESUME_KEYS
    from nas.train.checkpoint import load_resumable_state

    path = run.path / "supernet" / "ckpt.pt"
    if resume:
        load_resumable_state(path, map_location="cpu", config=config_to_dict(config),
                             resume_keys=RESUME_KEYS)
    elif path.is_file():
        raise ConfigError(f"run '{run.name}' already has a DARTS search checkpoint; pass "
                          "--resume to continue it, or pick another --run")


def train_darts(cfg: TrainConfig, run: RunDir, *, resume: bool,
                device: torch.device) -> TrainSummary:
    """Run a DARTS-family search for `nas train-supernet --space darts`."""
    from nas.train.run import STAGE, TrainSummary

    config = bilevel_config_from(cfg)
    data_dir = None if cfg.data_dir is None else Path(cfg.data_dir)
    splits = load_dataset(cfg.dataset, data_dir=data_dir, image_size=cfg.image_size,
                          seed=cfg.seed)
    space = DartsSpace(init_channels=config.init_channels, layers=config.layers,
                       num_classes=splits.num_classes, in_channels=splits.channels,
                       image_size=splits.image_size)
    if config.hardware_aware and config.latency_table is None:
        config = dataclasses.replace(
            config, latency_table=default_latency_source(run, space, resume=resume)
        )
    _check_start(run, config, resume=resume)
    # recorded before the search so `nas profile --run NAME` can time this network's ops
    run.update_manifest(space=space.spec())
    run.begin_stage(STAGE, config={**config_to_dict(config), "space": "darts",
                                   "dataset": cfg.dataset, "data_dir": cfg.data_dir,
                                   "image_size": cfg.image_size},
                    seed=cfg.seed, device=str(device))
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
