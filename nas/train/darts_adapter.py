"""`nas train-supernet` with a DARTS-family method: map the supernet-training options onto a
bilevel search; and the DARTS space's `SearchFamily` (`DartsSearch`).

The training command's `TrainConfig` describes once-for-all training; the options that carry
over (dataset, epochs, batch size, seed, steps, logging) are taken from it, and its method is
used when it names a DARTS-family method (the default method means first-order DARTS on the
darts space). Options
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
from typing import Any, cast

from nas.artifact_kinds import STAGE_CONFIG
from nas.artifacts import RunDir, atomic_write_json, read_json
from nas.errors import ArtifactError
from nas.supernet.differentiable import DifferentiableSupernet
from nas.train.bilevel_config import BilevelConfig
from nas.train.bilevel_spaces import SearchFamily, supernet_options
from nas.train.config import DARTS_OPTIONS, FAMILY_OPTIONS, METHOD_OPTIONS, STAGE, TrainConfig
from nas.train.registry import family_of
from nas.train.search_latency import ExpectedLatency
from search_spaces import SearchSpace
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
    values["method"], values["space"] = cfg.resolved_method, cfg.space
    values["space_options"] = cfg.space_options
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
    saved = read_json(path, STAGE_CONFIG) if path.is_file() else None
    return saved if isinstance(saved, dict) else None


def train_values(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """The `TrainConfig` values of a DARTS search from what its stage recorded (the
    `BilevelConfig` plus dataset options), so `--resume` needs no options repeated.

    Method- and family-specific options are only taken for their method and family, since
    `TrainConfig` refuses them elsewhere.
    """
    keys = (*_CARRIED, "space", "space_options", "dataset", "data_dir", "image_size", "method",
            *_UNLESS_DEFAULT)
    values = {key: recorded[key] for key in keys if key in recorded}
    method = recorded.get("method")
    family = family_of(str(recorded.get("space", "darts")))
    for key in DARTS_OPTIONS:
        if recorded.get(key) is None or method not in METHOD_OPTIONS.get(key, (method,)):
            continue
        if family in FAMILY_OPTIONS.get(key, (family,)):
            values[key] = recorded[key]
    return values


class DartsSearch(SearchFamily):
    """The DARTS cell space's part of a search: `DartsSupernet` at `--init-channels` and
    `--layers`, the per-op tables (`nas.train.darts_latency`), and beside `arch.json` the
    DARTS repository's `genotype.json` (read by `nas train --genotype`) and `genotype.png`."""

    def space_options(self, config: BilevelConfig) -> dict[str, Any]:
        return {"init_channels": config.init_channels, "layers": config.layers}

    def build(self, space: SearchSpace, config: BilevelConfig) -> DifferentiableSupernet:
        return cast(DartsSpace, space).build_supernet(**supernet_options(config))

    def latency_table(self, source: str, space: SearchSpace, run: RunDir, *,
                      resume: bool) -> tuple[dict[str, float], bool]:
        from nas.train.darts_latency import search_latency_table

        return search_latency_table(source, cast(DartsSpace, space), run, resume=resume)

    def expected_latency(self, space: SearchSpace, table: dict[str, float]) -> ExpectedLatency:
        from nas.train.darts_latency import expected_latency

        return expected_latency(cast(DartsSpace, space), table)

    def default_latency_source(self, run: RunDir, space: SearchSpace, *, resume: bool) -> str:
        return default_latency_source(run, cast(DartsSpace, space), resume=resume)

    def write_artifacts(self, run: RunDir, space: SearchSpace,
                        arch: dict[str, Any]) -> dict[str, Any]:
        atomic_write_json(run.sub("genotype.json"), arch)
        try:
            from search_spaces.darts.plot import plot_genotype

            plot_genotype(arch, run.sub("genotype.png"))
        except ImportError as exc:  # matplotlib is a dependency; keep the search result anyway
            logger.warning("genotype drawing skipped: %s", exc)
        darts = cast(DartsSpace, space)
        eval_space = DartsSpace(init_channels=36, layers=20, num_classes=darts.num_classes,
                                in_channels=darts.in_channels, image_size=darts.image_size)
        return {"genotype": arch, "eval_network_36x20": eval_space.complexity(arch)}


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
