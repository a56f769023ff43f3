"""`nas rank` end to end: sample subnets, score them, compare the scores with a truth, report.

1. The subnets: `sample_by_size` over the truth table's subnets (every one has a truth), else
   over the space (`--standalone`).
2. The scorers: `supernet` (a run's inherited val top-1 after BN recalibration), `params` and
   `macs` (always, the baselines), the zero-cost proxies asked for and `combined`.
3. The truth: a table (`--truth FILE`), or each subnet trained alone with the run's data and
   options (`--standalone K`, K subnets), each training resumable and kept.
4. The metrics with bootstrap intervals and the report folder (`report.json`, `subnets.csv`,
   `scatter.png`), beside `scores.jsonl` (see `nas.rank.scores`: a rerun recomputes nothing).

Folders: `runs/NAME/rank/TAG/` with a run, `runs/_rank/<space>...-<dataset>-<side>px/rank/TAG/`
without (`nas.artifacts.standalone_rank`); stand-alone trainings in `TAG/standalone/<arch_id>/`.
This package never imports training: the caller passes the stand-alone trainer (`nas rank`
passes `nas.train.subnet.train_for_ranking`), as search receives its scorers.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from nas.artifacts import RunDir, RunLayout, file_sha256, standalone_rank
from nas.config import config_to_dict
from nas.data import DatasetSplits, load_dataset
from nas.errors import ConfigError
from nas.locks import stage_lock
from nas.rank.combined import DEFAULT_MEMBERS, rank_average
from nas.rank.metrics import RankingMetrics, ranking_metrics
from nas.rank.parzc import PARZC, choose_labelled, fit_parzc, parzc_features
from nas.rank.report import SCATTER_PNG, RankedSubnet, write_report
from nas.rank.sampling import SampledSubnet, sample_by_size
from nas.rank.scores import ScoreLog
from nas.rank.scoring import (
    COMBINED,
    MEMBERS_OF,
    POPULATION,
    SIZE_PROXIES,
    ProxyScorer,
    parse_proxies,
    proxies_to_compute,
    proxy_batches,
)
from nas.rank.truth import TruthTable, read_truth
from nas.runtime import resolve_device
from nas.supernet.trained import TrainedSupernet
from nas.supernet.weights import weights_path
from search_spaces import create_sized_space, parse_space_options
from search_spaces.base import SearchSpace

SUPERNET = "supernet"  # the scorer of a run: inherited val top-1 (%), BN recalibrated
TRUTH = "truth"  # the stand-alone top-1 in scores.jsonl (--standalone)


class TrainAlone(Protocol):
    """Trains `arch` alone in `layout.train_dir` (resuming it) and returns its test top-1 (%)."""

    def __call__(
        self, space: SearchSpace, arch: Mapping[str, Any], layout: RunLayout, *,
        splits: DatasetSplits, run_config: Mapping[str, Any], epochs: int | None,
        max_steps: int | None, device: str, progress: Callable[[int, int], None] | None = None,
    ) -> float: ...


@dataclass(frozen=True)
class RankConfig:
    """Options of `nas rank` (flags > --config file > these defaults)."""

    samples: int = 200  # subnets ranked against a truth table
    seed: int = 0  # the sample, the bootstrap, proxies' weights and batches
    bins: int = 5  # size bins the sample is stratified over
    truth: str | None = None  # JSONL {"arch", "top1"} or CSV table
    truth_column: str | None = None  # default: <dataset>_test_top1, else top1
    standalone: int | None = None  # K subnets trained alone as the truth (needs a run)
    standalone_epochs: int | None = None  # default: the run's epochs
    standalone_steps: int | None = None  # stop each training after this many steps
    proxies: str = ""  # comma-separated registered proxies, `combined` and `parzc`
    labels: int | None = None  # subnets parzc is fitted on; every scorer judged on the others
    bootstrap: int = 1000  # resamples of the intervals (0: none)
    proxy_batch_size: int = 64
    proxy_batches: int = 1
    batch_size: int = 256  # supernet evaluation (and its BN calibration) batch size
    val_images: int | None = None  # score the supernet on the first N val images (None: all)
    threads: int | None = None  # torch CPU threads while scoring (None: torch's default)
    device: str = "cpu"

    def __post_init__(self) -> None:
        for key, low in (("samples", 2), ("bins", 1), ("bootstrap", 0), ("batch_size", 1)):
            if int(getattr(self, key)) < low:
                raise ConfigError(f"--{key.replace('_', '-')}: expected >= {low}, got "
                                  f"{getattr(self, key)}")
        for key, low in (("standalone", 2), ("standalone_epochs", 1), ("standalone_steps", 1),
                         ("threads", 1), ("labels", 2), ("val_images", 1)):
            value = getattr(self, key)
            if value is not None and value < low:
                raise ConfigError(f"--{key.replace('_', '-')}: expected >= {low}, got {value}")
        if (self.truth is None) == (self.standalone is None):
            raise ConfigError("expected one ground truth: --truth FILE or --standalone K, got "
                              + ("both" if self.truth else "neither"))


@dataclass(frozen=True)
class RankTarget:
    """Whose subnets: a run's (its space, data and supernet), or a space on a dataset."""

    runs_dir: Path
    run: str | None = None
    space: str | None = None
    dataset: str | None = None  # default: digits
    data_dir: str | None = None
    image_size: int | None = None
    space_options: tuple[str, ...] = ()
    tag: str | None = None  # default: the truth file's name, or "standalone"
    wait: bool = False  # queue behind another process ranking the same tag instead of failing


class RankObserver:
    """What `rank_subnets` reports; every hook does nothing.

    Lifecycle: `started(total, done)` once (`done` subnets are already scored in the folder),
    then per subnet `training(arch_id, step, total)` while it trains alone (`--standalone`)
    and `scored(arch_id, fresh)` when its scores exist; `stopped()` always at the end.
    """

    def started(self, total: int, done: int) -> None:
        """Scoring starts."""

    def training(self, arch_id: str, step: int, total: int) -> None:
        """A subnet trains alone: `step` of `total`."""

    def scored(self, arch_id: str, fresh: bool) -> None:
        """One more subnet is scored (`fresh`: now, not read from scores.jsonl)."""

    def stopped(self) -> None:
        """Scoring ended (done or failed)."""


@dataclass(frozen=True)
class RankResult:
    """A finished ranking: the report written and where."""

    folder: Path
    report: dict[str, Any]
    metrics: dict[str, RankingMetrics]
    computed: int  # subnets scored by this call (the others came from scores.jsonl)

    @property
    def scatter(self) -> Path:
        return self.folder / SCATTER_PNG


@dataclass(frozen=True)
class _Setup:
    space: SearchSpace
    splits: DatasetSplits
    trained: TrainedSupernet | None
    folder: Path
    dataset: str
    run: str | None
    data: dict[str, Any]  # run-less: the data options (a run's are in its weights)


def rank_subnets(
    cfg: RankConfig, target: RankTarget, *, observer: RankObserver | None = None,
    train_alone: TrainAlone | None = None,
) -> RankResult:
    """Rank subnets of `target` against a truth with every scorer (see the module docstring).

    Args:
        train_alone: trains a subnet alone; required with `cfg.standalone`.

    Raises:
        ConfigError: inconsistent options, a sample larger than the subnets available, or a
            folder holding scores computed with other settings.
        ArtifactError: a truth table whose subnets are not of the space (or unreadable).
    """
    observer = observer or RankObserver()
    proxies = parse_proxies(cfg.proxies)
    if PARZC in proxies and cfg.labels is None:
        raise ConfigError("--proxies parzc: expected --labels N, the subnets whose truth it is "
                          "fitted on (e.g. 50)")
    if cfg.standalone is not None and target.run is None:
        raise ConfigError("--standalone: expected --run NAME (subnets train alone with the "
                          "run's data and options)")
    if cfg.standalone is not None and train_alone is None:
        raise ConfigError("--standalone: expected a stand-alone trainer, got none; pass "
                          "train_alone=nas.train.subnet.train_for_ranking")
    setup = _setup(cfg, target)
    # one process per ranking folder: two would score every subnet twice into one log
    with stage_lock(setup.folder.parent.parent, f"rank-{setup.folder.name}", wait=target.wait,
                    hint="or use another --tag"):
        return _rank(cfg, setup, proxies, observer, train_alone)


def _rank(
    cfg: RankConfig, setup: _Setup, proxies: list[str], observer: RankObserver,
    train_alone: TrainAlone | None,
) -> RankResult:
    truth = None
    if cfg.truth is not None:
        truth = read_truth(Path(cfg.truth), setup.space, dataset=setup.dataset,
                           column=cfg.truth_column)
    subnets = sample_by_size(
        setup.space, cfg.standalone or cfg.samples, np.random.default_rng(cfg.seed),
        bins=cfg.bins, candidates=None if truth is None else list(truth.archs.values()),
    )
    log = ScoreLog(setup.folder, _settings(cfg, setup))
    scorers = [*([SUPERNET] if setup.trained else []),
               *(p for p in proxies_to_compute(proxies) if p not in SIZE_PROXIES)]
    needed = [*scorers, *([TRUTH] if truth is None else [])]
    computed = _score_all(cfg, setup, subnets, log, needed, observer, train_alone)
    columns = _columns(subnets, log, scorers, proxies)
    truths = [truth.lookup(s.arch) if truth else log.values[s.arch_id][TRUTH] for s in subnets]
    judged, learned = _learned(cfg, subnets, truths, columns, proxies)
    metrics = ranking_metrics([truths[i] for i in judged],
                              {name: column[judged] for name, column in columns.items()},
                              rng=np.random.default_rng(cfg.seed), resamples=cfg.bootstrap)
    ranked = [RankedSubnet(subnets[i], truths[i], {n: float(c[i]) for n, c in columns.items()},
                           _costs(log.seconds, subnets[i].arch_id, columns),
                           _costs(log.cpu_seconds, subnets[i].arch_id, columns))
              for i in judged]
    report = write_report(setup.folder, ranked, metrics, settings={
        "space": setup.space.spec(), "run": setup.run, "dataset": setup.dataset,
        "tag": setup.folder.name, "truth": _truth_settings(cfg, truth), **learned,
        **{k: v for k, v in config_to_dict(cfg).items() if k not in ("truth", "truth_column")},
    })
    return RankResult(setup.folder, report, metrics, computed)


def _setup(cfg: RankConfig, target: RankTarget) -> _Setup:
    tag = target.tag or _default_tag(cfg)
    if target.run is not None:
        given = {"--space": target.space, "--space-option": target.space_options or None,
                 "--dataset": target.dataset, "--data-dir": target.data_dir,
                 "--image-size": target.image_size}
        extra = [flag for flag, value in given.items() if value is not None]
        if extra:
            raise ConfigError(f"{', '.join(extra)}: options of a ranking without --run; a "
                              "run's space, data and supernet come from the run")
        run = RunDir(target.runs_dir, target.run).require()
        trained = TrainedSupernet.load(run, resolve_device(cfg.device))
        return _Setup(trained.space, trained.splits, trained, run.rank_dir(tag),
                      trained.settings.dataset, run.name, {})
    if target.space is None:
        raise ConfigError("expected --run NAME (a trained supernet) or --space SPACE "
                          "(training-free scorers only)")
    dataset = target.dataset or "digits"
    splits = load_dataset(dataset, image_size=target.image_size, seed=cfg.seed,
                          data_dir=Path(target.data_dir) if target.data_dir else None)
    options = parse_space_options(target.space_options)
    space = create_sized_space(target.space, num_classes=splits.num_classes,
                               in_channels=splits.channels, image_size=splits.image_size,
                               options=options)
    layout = standalone_rank(target.runs_dir, target.space, dataset=dataset,
                             side=splits.image_size, options=options)
    data = {"dataset": dataset, "data_dir": target.data_dir, "image_size": splits.image_size}
    return _Setup(space, splits, None, layout.rank_dir(tag), dataset, None, data)


def _default_tag(cfg: RankConfig) -> str:
    if cfg.truth is None:
        return "standalone"
    return re.sub(r"[^A-Za-z0-9._-]", "-", Path(cfg.truth).stem).lstrip(".") or "truth"


def _settings(cfg: RankConfig, setup: _Setup) -> dict[str, Any]:
    """What the scores in the folder depend on (`ScoreLog` refuses a mix)."""
    # retrained weights must not reuse the old scores
    weights = None if setup.trained is None else file_sha256(weights_path(setup.trained.run))
    return {
        "space": setup.space.spec(), "data": setup.data, "supernet_weights": weights,
        "seed": cfg.seed, "batch_size": cfg.batch_size if weights else None,
        "proxy_batch_size": cfg.proxy_batch_size, "proxy_batches": cfg.proxy_batches,
        "standalone": None if cfg.standalone is None else
        {"epochs": cfg.standalone_epochs, "steps": cfg.standalone_steps},
        # only when given: folders scored before the option existed stay valid
        **({} if cfg.val_images is None else {"val_images": cfg.val_images}),
    }


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch's CPU threads set to `count` while scoring, then given back."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _score_all(
    cfg: RankConfig, setup: _Setup, subnets: list[SampledSubnet], log: ScoreLog,
    needed: list[str], observer: RankObserver, train_alone: TrainAlone | None,
) -> int:
    """Compute every missing score, logging each subnet's as soon as it exists."""
    proxies = [name for name in needed if name not in (SUPERNET, TRUTH)]
    computed = 0
    with _threads(cfg.threads):
        scorer = None
        if proxies:
            batches = proxy_batches(setup.splits, batch_size=cfg.proxy_batch_size,
                                    batches=cfg.proxy_batches, seed=cfg.seed)
            device = resolve_device(cfg.device)
            scorer = (ProxyScorer(setup.trained.net, batches, seed=cfg.seed, device=device)
                      if setup.trained else
                      ProxyScorer.fresh(setup.space, batches, seed=cfg.seed, device=device))
        done = sum(not log.missing(s.arch_id, needed) for s in subnets)
        observer.started(len(subnets), done)
        try:
            for subnet in subnets:
                missing = log.missing(subnet.arch_id, needed)
                if missing:
                    _score_one(cfg, setup, subnet, missing, log, scorer, observer, train_alone)
                    computed += 1
                observer.scored(subnet.arch_id, bool(missing))
        finally:
            observer.stopped()
    return computed


def _score_one(
    cfg: RankConfig, setup: _Setup, subnet: SampledSubnet, missing: list[str], log: ScoreLog,
    scorer: ProxyScorer | None, observer: RankObserver, train_alone: TrainAlone | None,
) -> None:
    values: dict[str, float] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    if SUPERNET in missing and setup.trained is not None:
        start, cpu_start = time.perf_counter(), time.process_time()
        metrics = setup.trained.evaluate(subnet.arch, split="val", batch_size=cfg.batch_size,
                                         max_images=cfg.val_images)
        values[SUPERNET], seconds[SUPERNET] = float(metrics["top1"]), time.perf_counter() - start
        cpu[SUPERNET] = time.process_time() - cpu_start
    names = [name for name in missing if name not in (SUPERNET, TRUTH)]
    if names and scorer is not None:
        for name, score in scorer.score(subnet.arch, names).items():
            values[name], seconds[name], cpu[name] = score.value, score.seconds, score.cpu_seconds
    log.add(subnet.arch_id, values, seconds, cpu)  # before a long training: a kill keeps these
    if TRUTH in missing and train_alone is not None and setup.trained is not None:
        start = time.perf_counter()
        top1 = train_alone(
            setup.space, subnet.arch, RunLayout(setup.folder / "standalone" / subnet.arch_id),
            splits=setup.splits, run_config=setup.trained.train_config,
            epochs=cfg.standalone_epochs, max_steps=cfg.standalone_steps, device=cfg.device,
            progress=lambda step, total: observer.training(subnet.arch_id, step, total),
        )
        log.add(subnet.arch_id, {TRUTH: top1}, {TRUTH: time.perf_counter() - start})


def _columns(
    subnets: list[SampledSubnet], log: ScoreLog, scorers: list[str], proxies: list[str]
) -> dict[str, np.ndarray]:
    """Each scorer's values in sample order: supernet, the baselines, proxies, combined."""
    columns = {name: np.array([log.values[s.arch_id][name] for s in subnets])
               for name in scorers}
    columns["params"] = np.array([float(s.params) for s in subnets])
    columns["macs"] = np.array([float(s.macs) for s in subnets])
    order = [*([SUPERNET] if SUPERNET in columns else []), *SIZE_PROXIES,
             *(p for p in proxies_to_compute(proxies) if p not in SIZE_PROXIES)]
    ordered = {name: columns[name] for name in order}
    if COMBINED in proxies:
        ordered[COMBINED] = rank_average(ordered, DEFAULT_MEMBERS)
    return ordered


def _learned(
    cfg: RankConfig, subnets: list[SampledSubnet], truths: list[float],
    columns: dict[str, np.ndarray], proxies: list[str],
) -> tuple[np.ndarray, dict[str, Any]]:
    """With `--labels`: fit parzc (when asked) on the labelled subnets, adding its column;
    returns the indices of the subnets to judge (the others) and what to record."""
    everyone = np.arange(len(subnets))
    if cfg.labels is None:
        return everyone, {}
    labelled = choose_labelled(len(subnets), cfg.labels, np.random.default_rng([cfg.seed, 50]))
    recorded: dict[str, Any] = {"labelled": [subnets[i].arch_id for i in labelled]}
    if PARZC in proxies:
        features = parzc_features(columns)
        columns[PARZC], fit = fit_parzc(features, [truths[i] for i in labelled], labelled,
                                        seed=cfg.seed)
        recorded["parzc_weights"] = fit.weight_of()
    return np.setdiff1d(everyone, labelled), recorded


def _costs(
    recorded: Mapping[str, Mapping[str, float]], arch_id: str, columns: Mapping[str, Any]
) -> dict[str, float]:
    """Each scorer's seconds for one subnet, from `recorded` (the log's wall-clock or CPU
    seconds; sizes are free; `combined`, `parzc`: their members)."""
    known = recorded.get(arch_id, {})
    seconds = {name: known.get(name, 0.0) for name in columns if name not in POPULATION}
    for name, members in MEMBERS_OF.items():
        if name in columns:
            seconds[name] = sum(seconds.get(m, 0.0) for m in members)
    if TRUTH in known:
        seconds[TRUTH] = known[TRUTH]
    return seconds


def _truth_settings(cfg: RankConfig, truth: TruthTable | None) -> dict[str, Any]:
    if truth is not None:
        return {"source": truth.source, "column": truth.column}
    return {"standalone": cfg.standalone, "epochs": cfg.standalone_epochs,
            "steps": cfg.standalone_steps}


__all__ = [
    "SUPERNET", "RankConfig", "RankObserver", "RankResult", "RankTarget", "TrainAlone",
    "rank_subnets",
]
