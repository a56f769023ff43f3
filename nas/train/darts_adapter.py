"""`nas train-supernet --space darts`: map the supernet-training options onto a bilevel search.

The training command's `TrainConfig` describes once-for-all training; the options that carry
over (dataset, epochs, batch size, seed, steps, logging) are taken from it, and its method is
used when it names a DARTS-family method (the default method means first-order DARTS). Options
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

import logging
from collections.abc import Mapping
from typing import Any

from nas.artifacts import RunDir, read_json
from nas.errors import ArtifactError
from nas.train.bilevel_config import BilevelConfig
from nas.train.config import DARTS_OPTIONS, DEFAULT_METHOD, METHOD_OPTIONS, STAGE, TrainConfig
from nas.train.registry import TRAINERS
from search_spaces.darts.space import DartsSpace

# TrainConfig fields of the same name and meaning in BilevelConfig
_CARRIED = ("epochs", "batch_size", "seed", "max_steps", "checkpoint_every",
            "checkpoint_minutes", "log_every", "eval_batch_size")
# OFA's defaults of these differ from DARTS': taken only when the user changed them
_UNLESS_DEFAULT = ("lr", "weight_decay", "momentum", "grad_clip")
logger = logging.getLogger(__name__)


def bilevel_config_from(cfg: TrainConfig, **overrides: Any) -> BilevelConfig:
    """The `BilevelConfig` implied by a `TrainConfig` (plus explicit overrides)."""
    defaults = TrainConfig()
    values: dict[str, Any] = {key: getattr(cfg, key) for key in _CARRIED}
    values["method"] = TRAINERS.resolve("darts", cfg.method, default=DEFAULT_METHOD)
    for key in _UNLESS_DEFAULT:
        if getattr(cfg, key) is not None and getattr(cfg, key) != getattr(defaults, key):
            values[key] = getattr(cfg, key)
    if cfg.width_mult:
        # --width-mult scales the cells' channels (16 at 1.0), kept even for factorized reduce
        values["init_channels"] = max(2, 2 * round(8 * float(cfg.width_mult)))
    for key in DARTS_OPTIONS:
        if getattr(cfg, key) is not None:
            values[key] = getattr(cfg, key)
    values.update(overrides)
    return BilevelConfig(**values)


def _saved_search_config(run: RunDir) -> dict[str, Any] | None:
    """The config the run's supernet stage recorded when it started, if any."""
    path = run.path / "config" / f"{STAGE}.json"
    saved = read_json(path) if path.is_file() else None
    return saved if isinstance(saved, dict) else None


def train_values(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """The `TrainConfig` values of a DARTS search from what its stage recorded (the
    `BilevelConfig` plus dataset options), so `--resume` needs no options repeated.

    Method-specific options are only taken for their method, since `TrainConfig` refuses
    them elsewhere.
    """
    keys = (*_CARRIED, "space", "dataset", "data_dir", "image_size", "method",
            *_UNLESS_DEFAULT)
    values = {key: recorded[key] for key in keys if key in recorded}
    method = recorded.get("method")
    for key in DARTS_OPTIONS:
        if key in recorded and method in METHOD_OPTIONS.get(key, (method,)):
            values[key] = recorded[key]
    return values


def default_latency_source(run: RunDir, space: DartsSpace, *, resume: bool) -> str:
    """`profile:cpu` when `nas profile` measured the ops of this network on the CPU, else
    `measure` (time them now); a resumed run keeps the source it started with."""
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
