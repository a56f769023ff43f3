"""What `nas search` optimises on each device: its options and the problems built from them.

A `Problem` is one device's objectives and constraints, from a run (supernet accuracy and the
device's latency predictor) or from an oracle table (one latency column per device).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.artifacts import RunDir
from nas.errors import ConfigError
from nas.search import objectives as metrics
from nas.search.base import Constraint, Objective
from nas.search.oracle import Oracle
from nas.search.screen import AccuracyScreen
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
    accuracy: str = "supernet"  # supernet (data) or predictor (screened, see --help)
    storage: str | None = None  # Optuna RDB URL; default sqlite in the search folder
    split: str = "val"
    batch_size: int = 256
    eval_device: str = "cpu"  # torch device that evaluates accuracy
    measure: bool = True  # time the front for real when the profiled device is this machine
    skip_missing: bool = False
    # a poor latency predictor is refused unless the front is measured here or this is set
    accept_poor_predictor: bool = False
    calibration_batches: int | None = None  # BN recalibration batches (None: the run's)

    def __post_init__(self) -> None:
        if self.calibration_batches is not None and self.calibration_batches < 1:
            raise ConfigError(
                f"--calibration-batches: expected >= 1, got {self.calibration_batches}")
        for name in ("budget", "population", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')}: expected >= 1, got {getattr(self, name)}"
                )
        for name in ("latency_max", "macs_max", "params_max"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected > 0, got {value}")
        if self.accuracy not in ("supernet", "predictor"):
            raise ConfigError(f"--accuracy: expected supernet or predictor, got '{self.accuracy}'")


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
                n, d, cheap=d == "minimize", unit=u
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
    cfg: SearchConfig, problem: Problem, space: SearchSpace
) -> AccuracyScreen | None:
    """With `--accuracy predictor`: screen candidates of the expensive maximised metric."""
    if cfg.accuracy != "predictor":
        return None
    target = next(
        (o for o in problem.objectives if o.direction == "maximize" and not o.cheap), None
    )
    if target is None:
        raise ConfigError(
            "--accuracy predictor: expected an expensive maximised objective (top1) to screen, "
            f"got {', '.join(o.name for o in problem.objectives)}"
        )
    return AccuracyScreen(space, metric=target.name, warmup=min(30, max(cfg.budget // 5, 5)))
