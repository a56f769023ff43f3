"""What `nas search` optimises on each device: its options and the problems built from them.

A `Problem` is one device's objectives and constraints, from a run (supernet accuracy and the
device's latency predictor) or from an oracle table (one latency column per device).
`prepare` builds them all from the options and the `SearchTarget`; the search's worker
processes (`--workers`) call it too, since objectives (closures over a supernet or a table)
cannot travel between processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.artifacts import RunDir
from nas.config import check_finite
from nas.errors import ConfigError
from nas.search import objectives as metrics
from nas.search.base import Constraint, Objective
from nas.search.oracle import Oracle
from nas.search.screen import AccuracyScreen, ProxyScreen
from search_spaces.base import SearchSpace

LATENCY = "latency_ms"


@dataclass(frozen=True)
class SearchConfig:
    """Options of `nas search` (flags > --config file > these defaults)."""

    objectives: str = "top1,latency"  # accuracy-like names are maximised, others minimised
    algorithm: str | None = None  # default: nsga2 for >= 2 objectives, else evolution
    budget: int = 500  # distinct subnets scored
    population: int = 50
    seed: int = 0
    latency_max: float | None = None  # ms
    macs_max: float | None = None  # millions of MACs
    params_max: float | None = None  # millions of parameters
    accuracy: str = "supernet"  # supernet (data), predictor or proxy:NAME (screened, --help)
    storage: str | None = None  # Optuna RDB URL; default sqlite in the search folder
    split: str = "val"
    batch_size: int = 256
    eval_device: str = "cpu"  # torch device that evaluates accuracy
    measure: bool = True  # time the front for real when the profiled device is this machine
    skip_missing: bool = False
    # a poor latency predictor is refused unless the front is measured here or this is set
    accept_poor_predictor: bool = False
    calibration_batches: int | None = None  # BN recalibration batches (None: the run's)
    workers: int = 1  # local worker processes sharing the study
    oracle_delay: float = 0.0  # seconds slept per --oracle evaluation: simulates a scorer's cost

    def __post_init__(self) -> None:
        check_finite(self)  # NaN passes every comparison below
        if self.calibration_batches is not None and self.calibration_batches < 1:
            raise ConfigError(
                f"--calibration-batches: expected >= 1, got {self.calibration_batches}")
        if self.oracle_delay < 0:
            raise ConfigError(f"oracle_delay: expected >= 0 seconds, got {self.oracle_delay}")
        for name in ("budget", "population", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')}: expected >= 1, got {getattr(self, name)}"
                )
        for name in ("latency_max", "macs_max", "params_max"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected > 0, got {value}")
        if self.proxy is not None:
            from nas.rank.proxies import PROXIES  # torch: only when a proxy screens

            PROXIES.get(self.proxy)  # an unknown name fails here, listing the proxies
        elif self.accuracy not in ("supernet", "predictor"):
            raise ConfigError(
                f"--accuracy: expected supernet, predictor or proxy:NAME, got '{self.accuracy}'"
            )

    @property
    def proxy(self) -> str | None:
        """The zero-cost proxy of `--accuracy proxy:NAME`, else None."""
        kind, _, name = self.accuracy.partition(":")
        return name if kind == "proxy" else None


@dataclass(frozen=True)
class SearchTarget:
    """What to search: a run's supernet for its profiled devices, or an oracle table.

    Attributes:
        runs_dir: the runs folder.
        run: the run (optional with `oracle`: default `oracle-<space>`).
        devices: profiled devices, one front each (with `oracle`: latency columns).
        tag: the search's name (default: the device); `<tag>-<device>` with several devices.
        oracle: a JSONL table of metrics per subnet, searched instead of a supernet.
        space: the search space of the `oracle` table.
        argv: the command line recorded in the manifest (default: `sys.argv`).
        wait: queue behind another process writing the same search instead of failing.
    """

    runs_dir: Path
    run: str | None = None
    devices: Sequence[str] = ()
    tag: str | None = None
    oracle: Path | None = None
    space: str | None = None
    argv: list[str] | None = None
    wait: bool = False


@dataclass
class Problem:
    """What one device's search optimises, plus what the outputs need afterwards."""

    device: str | None
    objectives: list[Objective]
    constraints: list[Constraint]
    extra: list[Objective]
    latency: metrics.LatencySource | None = None  # supernet mode


def _constraints(cfg: SearchConfig, latency_name: str) -> list[Constraint]:
    out = []
    if cfg.latency_max is not None:
        out.append(Constraint(latency_name, max=cfg.latency_max))
    if cfg.macs_max is not None:
        out.append(Constraint("macs", max=cfg.macs_max * 1e6))
    if cfg.params_max is not None:
        out.append(Constraint("params", max=cfg.params_max * 1e6))
    return out


def _assemble(
    wanted: Sequence[tuple[str, str]], constraints: list[Constraint], available: dict[str, Any],
    offered: Sequence[str] = (),
) -> tuple[list[Objective], list[Objective]]:
    """Objectives in the order asked, and extra metrics needed only by constraints.

    `offered`: more names the user may ask for (made available only when asked for).
    """

    def get(name: str, direction: str) -> Objective:
        if name not in available:
            import difflib

            names = sorted({*available, *offered})
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"expected a metric among {', '.join(names)}, got '{name}'{hint}; "
                "fix --objectives"
            )
        metric: Objective = available[name](direction)
        return metric

    objectives = [get(n, d) for n, d in wanted]
    names = {o.name for o in objectives}
    extra = [get(c.metric, "minimize") for c in constraints if c.metric not in names]
    return objectives, extra


def _complexity(space: SearchSpace) -> dict[str, Any]:
    """`macs` and `params`, each a factory of the objective with a given direction."""
    return {
        name: (lambda d, o=obj: dataclasses.replace(o, direction=d))
        for name, obj in metrics.complexity_metrics(space).items()
    }


def oracle_problems(
    cfg: SearchConfig, oracle: Oracle, space: SearchSpace, devices: Sequence[str]
) -> list[Problem]:
    """One problem per device (or one without a device), every metric from the table."""
    problems = []
    choices: list[str | None] = [*devices] or [None]
    for device in choices:
        per_device = f"{LATENCY}_{device}"  # tables may hold one latency column per device
        latency_name = per_device if device and per_device in oracle.metrics else LATENCY
        available = _complexity(space)
        for name in oracle.metrics:
            # the maximised metric (accuracy) is the expensive one; the others are cheap
            # lookups, checked before it as predicted latency would be
            unit = "ms" if name.startswith("latency") else ""
            available[name] = lambda d, n=name, u=unit: oracle.objective(
                n, d, cheap=d == "minimize", unit=u,
                delay=cfg.oracle_delay if d == "maximize" else 0.0,
            )
        wanted = []
        for name, direction in metrics.parse_objectives(cfg.objectives, aliases=False):
            if name not in available:
                name = (
                    latency_name
                    if name in ("latency", LATENCY)
                    else metrics.ALIASES.get(name, name)
                )
            wanted.append((name, direction))
        constraints = _constraints(cfg, latency_name)
        objectives, extra = _assemble(wanted, constraints, available)
        problems.append(Problem(device, objectives, constraints, extra))
    return problems


def supernet_problems(
    cfg: SearchConfig, run: RunDir, space: SearchSpace, devices: Sequence[str]
) -> tuple[list[Problem], Any]:
    """One problem per device of a run, and the supernet accuracy they share (or None)."""
    wanted = metrics.parse_objectives(cfg.objectives)
    accuracy = None
    if any(n == "top1" for n, _ in wanted):
        accuracy = metrics.SupernetAccuracy.load(
            run, device=cfg.eval_device, split=cfg.split, batch_size=cfg.batch_size,
            calibration_batches=cfg.calibration_batches,
        )
    problems = []
    for device in devices:
        available = _complexity(space)
        if accuracy is not None:
            available["top1"] = lambda d, a=accuracy: dataclasses.replace(
                a.objective(), direction=d
            )
        latency = None
        constraints = _constraints(cfg, LATENCY)
        if any(n == LATENCY for n, _ in wanted) or cfg.latency_max is not None:
            latency = metrics.predictor_latency(run, device, space)
            _check_trust(cfg, latency, device)
            available[LATENCY] = lambda d, s=latency: dataclasses.replace(s.objective, direction=d)
        # the aliases too: users type `latency`, the metric is called latency_ms
        offered = [LATENCY, "top1", *metrics.ALIASES]
        objectives, extra = _assemble(wanted, constraints, available, offered)
        problems.append(Problem(device, objectives, constraints, extra, latency))
    return problems, accuracy


def _check_trust(cfg: SearchConfig, latency: metrics.LatencySource, device: str) -> None:
    """Refuse a poor predictor whose front nobody will measure, unless the user accepts it.

    A poor predictor is fine when the front is measured here (the search marks members over
    the budget and `nas export --pick best` skips them); otherwise its front may break the
    budget unnoticed.
    """
    if not latency.meta.get("poor") or cfg.accept_poor_predictor:
        return
    if cfg.measure and latency.local:
        return
    why = "--no-measure" if latency.local else "it was profiled on another machine"
    raise ConfigError(
        f"the latency predictor of '{device}' is poor and the front will not be measured "
        f"({why}), so subnets offered within --latency-max may not be; profile more subnets "
        f"(`nas profile --device {device} --samples N`), or pass --accept-poor-predictor"
    )


def accuracy_screen(
    cfg: SearchConfig, problem: Problem, space: SearchSpace,
    accuracy: metrics.SupernetAccuracy | None = None,
) -> AccuracyScreen | None:
    """With `--accuracy predictor` or `proxy:NAME`: screen candidates of the expensive
    maximised metric (a proxy needs the run's supernet `accuracy`: its data feeds the proxy)."""
    if cfg.accuracy == "supernet":
        return None
    target = next(
        (o for o in problem.objectives if o.direction == "maximize" and not o.cheap), None
    )
    if target is None:
        raise ConfigError(
            f"--accuracy {cfg.accuracy}: expected an expensive maximised objective (top1) to "
            f"screen, got {', '.join(o.name for o in problem.objectives)}"
        )
    warmup = min(30, max(cfg.budget // 5, 5))
    if cfg.proxy is None:
        return AccuracyScreen(space, metric=target.name, warmup=warmup)
    if accuracy is None:
        raise ConfigError(f"--accuracy {cfg.accuracy}: expected a run with a trained supernet "
                          "(its data feeds the proxy), got an oracle table")
    from nas.rank.scoring import ProxyScorer, proxy_batches

    trained = accuracy.trained
    batches = proxy_batches(trained.splits, batch_size=64, batches=1, seed=cfg.seed)
    scorer = ProxyScorer(trained.net, batches, seed=cfg.seed, device=trained.device)
    return ProxyScreen(scorer, cfg.proxy, metric=target.name, warmup=warmup)


@dataclass(frozen=True)
class Setup:
    """Everything the searches of one `nas search` share.

    Attributes:
        run: the run folder.
        space: the search space.
        problems: one per device, in the target's order.
        accuracy: the supernet's accuracy scorer (None for an oracle or without top1).
    """

    run: RunDir
    space: SearchSpace
    problems: list[Problem]
    accuracy: Any = None


def prepare(cfg: SearchConfig, target: SearchTarget) -> Setup:
    """The run, space and per-device problems of `target` under `cfg`."""
    devices = list(dict.fromkeys(target.devices))
    if target.oracle is not None:
        return _oracle_setup(cfg, target, devices)
    if target.run is None or not devices:
        raise ConfigError("expected --run NAME and --device D (or --oracle FILE --space SPACE)")
    run = RunDir(target.runs_dir, target.run).require()
    space = metrics.run_space(run)
    problems, accuracy = supernet_problems(cfg, run, space, devices)
    return Setup(run, space, problems, accuracy)


def _oracle_setup(cfg: SearchConfig, target: SearchTarget, devices: list[str]) -> Setup:
    from search_spaces import create_space

    if target.space is None or target.oracle is None:
        raise ConfigError("--oracle: expected --space SPACE naming the table's search space")
    space = create_space(target.space)
    table = Oracle.load(target.oracle, space, skip_missing=cfg.skip_missing)
    run = RunDir(target.runs_dir, target.run or f"oracle-{target.space}")
    if not run.exists():
        run.update_manifest(space=space.spec())
    return Setup(run, space, oracle_problems(cfg, table, space, devices))
