"""`nas search`: the Pareto front of accuracy vs. device latency under constraints.

Thin layer: options -> `SearchConfig` -> objectives (supernet + predictor, or an oracle
table) -> `nas.search.optimize.run_search` per device -> files in `runs/NAME/search/TAG/` and a
table (or `--json`) on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nas.arch import canonical_json
from nas.artifacts import RunDir
from nas.commands._common import (
    ConfigOption,
    JsonOption,
    RunsDirOption,
    console,
    err_console,
    resolve_config,
    resolve_runs_dir,
)
from nas.config import config_to_dict
from nas.errors import ConfigError
from nas.search.base import Candidate, Constraint, Objective
from nas.search.objectives import parse_objectives

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

    def __post_init__(self) -> None:
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
    """What one device's search optimises, plus what the command needs afterwards."""

    device: str | None
    objectives: list[Objective]
    constraints: list[Constraint]
    extra: list[Objective]
    latency: Any = None  # LatencySource (supernet mode)


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
    wanted: Sequence[tuple[str, str]], constraints: list[Constraint], available: dict[str, Any]
) -> tuple[list[Objective], list[Objective]]:
    """Objectives in the order asked, and extra metrics needed only by constraints."""

    def get(name: str, direction: str) -> Objective:
        if name not in available:
            raise ConfigError(
                f"expected a metric among {', '.join(sorted(available))}, got '{name}'; "
                "fix --objectives"
            )
        metric: Objective = available[name](direction)
        return metric

    objectives = [get(n, d) for n, d in wanted]
    names = {o.name for o in objectives}
    extra = [get(c.metric, "minimize") for c in constraints if c.metric not in names]
    return objectives, extra


def _oracle_problems(
    cfg: SearchConfig, oracle: Any, space: Any, devices: list[str]
) -> list[Problem]:
    from nas.search.objectives import ALIASES, complexity_metrics

    problems = []
    choices: list[str | None] = [*devices] or [None]
    for device in choices:
        per_device = f"{LATENCY}_{device}"  # tables may hold one latency column per device
        latency_name = per_device if device and per_device in oracle.metrics else LATENCY
        available: dict[str, Any] = {
            name: (lambda d, o=obj: dataclasses.replace(o, direction=d))
            for name, obj in complexity_metrics(space).items()
        }
        for name in oracle.metrics:
            # the maximised metric (accuracy) is the expensive one; the others are cheap
            # lookups, checked before it as predicted latency would be
            unit = "ms" if name.startswith("latency") else ""
            available[name] = lambda d, n=name, u=unit: oracle.objective(
                n, d, cheap=d == "minimize", unit=u
            )
        wanted = []
        for name, direction in parse_objectives(cfg.objectives, aliases=False):
            if name not in available:
                name = latency_name if name in ("latency", LATENCY) else ALIASES.get(name, name)
            wanted.append((name, direction))
        constraints = _constraints(cfg, latency_name)
        objectives, extra = _assemble(wanted, constraints, available)
        problems.append(Problem(device, objectives, constraints, extra))
    return problems


def _supernet_problems(
    cfg: SearchConfig, run: RunDir, space: Any, devices: list[str]
) -> tuple[list[Problem], Any]:
    from nas.search.objectives import SupernetAccuracy, complexity_metrics, predictor_latency

    wanted = parse_objectives(cfg.objectives)
    accuracy = None
    if any(n == "top1" for n, _ in wanted):
        accuracy = SupernetAccuracy.load(
            run, device=cfg.eval_device, split=cfg.split, batch_size=cfg.batch_size
        )
    problems = []
    for device in devices:
        available: dict[str, Any] = {
            name: (lambda d, o=obj: dataclasses.replace(o, direction=d))
            for name, obj in complexity_metrics(space).items()
        }
        if accuracy is not None:
            available["top1"] = lambda d, a=accuracy: dataclasses.replace(
                a.objective(), direction=d
            )
        latency = None
        constraints = _constraints(cfg, LATENCY)
        if any(n == LATENCY for n, _ in wanted) or cfg.latency_max is not None:
            latency = predictor_latency(run, device, space)
            available[LATENCY] = lambda d, s=latency: dataclasses.replace(s.objective, direction=d)
        objectives, extra = _assemble(wanted, constraints, available)
        problems.append(Problem(device, objectives, constraints, extra, latency))
    return problems, accuracy


def _accuracy_screen(cfg: SearchConfig, problem: Problem, space: Any) -> Any:
    """With `--accuracy predictor`: screen candidates of the expensive maximised metric."""
    if cfg.accuracy != "predictor":
        return None
    from nas.search.screen import AccuracyScreen

    target = next(
        (o for o in problem.objectives if o.direction == "maximize" and not o.cheap), None
    )
    if target is None:
        raise ConfigError(
            "--accuracy predictor: expected an expensive maximised objective (top1) to screen, "
            f"got {', '.join(o.name for o in problem.objectives)}"
        )
    return AccuracyScreen(space, metric=target.name, warmup=min(30, max(cfg.budget // 5, 5)))


def _progress(enabled: bool, budget: int, label: str) -> tuple[Progress | None, Any]:
    if not enabled:
        return None, None
    progress = Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("new {task.fields[new]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,  # a failed search then ends with its one-line error only
    )
    return progress, progress.add_task(label, total=budget, new=0)


def _table(
    title: str, front: list[Candidate], objectives: list[Objective], measured: dict[str, float]
) -> Table:
    table = Table(title=title)
    metrics = [o.name for o in objectives] + [
        m
        for m in ("latency_ms", "macs", "params")
        if front and m in front[0].values and m not in {o.name for o in objectives}
    ]
    for column in ("#", "arch_id", *metrics, *(["measured ms"] if measured else []), "arch"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for index, candidate in enumerate(front):
        cells = [str(index), candidate.arch_id]
        cells += [_fmt(m, candidate.values.get(m)) for m in metrics]
        if measured:
            cells.append(_fmt("latency_ms", measured.get(candidate.arch_id)))
        text = canonical_json(candidate.arch)
        cells.append(text if len(text) <= 60 else text[:57] + "...")
        table.add_row(*cells)
    return table


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in ("macs", "params"):
        return f"{value / 1e6:.2f}M"
    return f"{value:.3f}" if metric.startswith("latency") else f"{value:.4g}"


def _search_one(
    cfg: SearchConfig,
    run: RunDir,
    tag: str,
    problem: Problem,
    space: Any,
    accuracy: Any,
    quiet: bool,
    header: dict[str, Any],
) -> list[dict[str, Any]]:
    from nas.search.optimize import run_search
    from nas.search.output import flat, plot_front, write_front, write_trials

    algorithm = cfg.algorithm or ("nsga2" if len(problem.objectives) >= 2 else "evolution")
    out = run.path / "search" / tag
    out.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    config = {
        **config_to_dict(cfg),
        "algorithm": algorithm,
        "device": problem.device,
        "tag": tag,
        "storage": storage,
    }
    stage = f"search-{tag}"
    run.begin_stage(stage, config=config, seed=cfg.seed, device=problem.device)
    progress, task = _progress(not quiet, cfg.budget, f"{algorithm} {tag}")
    counts = {"new": 0}

    def on_use(candidate: Candidate, fresh: bool) -> None:
        counts["new"] += int(fresh)
        if progress is not None:
            progress.update(task, advance=1, new=counts["new"])

    if progress is not None:
        progress.start()
    try:
        result = run_search(
            space,
            problem.objectives,
            algorithm=algorithm,
            budget=cfg.budget,
            seed=cfg.seed,
            population=cfg.population,
            constraints=problem.constraints,
            extra=problem.extra,
            storage=storage,
            study_name=tag,
            sync=cfg.storage is not None,
            on_use=on_use,
            screen=_accuracy_screen(cfg, problem, space),
        )
    except BaseException:
        run.end_stage(stage, status="failed")
        raise
    finally:
        if progress is not None:
            progress.stop()
    measured = _measure(cfg, problem, accuracy, result.front, quiet)
    header = {**header, "device": problem.device, "algorithm": algorithm, "config": config}
    write_front(
        out,
        result.front,
        objectives=problem.objectives,
        constraints=problem.constraints,
        header=header,
        measured=measured,
    )
    write_trials(out, result.history, result.rejected)
    if len(problem.objectives) >= 2:
        y, x = problem.objectives[0], problem.objectives[1]
        plot_front(
            out / "pareto.png",
            result.history,
            result.front,
            x=x,
            y=y,
            constraints=problem.constraints,
            title=f"{run.name} / {tag}: {algorithm}",
            measured=measured,
        )
    run.end_stage(
        stage,
        summary={
            "front": len(result.front),
            "scored": len(result.history),
            "new_evaluations": result.new_evaluations,
            "rejected": result.rejected,
            "screened": result.screened,
            "seconds": round(result.seconds, 3),
        },
    )
    if not quiet:
        console.print(
            f"{algorithm}: scored {len(result.history)} subnets ("
            + (
                f"{result.new_evaluations} new, the rest from the study"
                if result.new_evaluations < len(result.history)
                else "all new"
            )
            + f") in {result.seconds:.1f} s; {result.rejected} rejected before scoring"
            + (f"; {result.screened} skipped by the accuracy predictor" if result.screened else "")
        )
        console.print(
            _table(
                f"Pareto front: {run.name} / {tag} ({len(result.front)} of "
                f"{len(result.history)} scored, {result.rejected} rejected "
                "before scoring)",
                result.front,
                problem.objectives,
                measured,
            )
        )
        console.print(
            f"wrote {out}/pareto.json, pareto.csv, trials.jsonl"
            + (", pareto.png" if len(problem.objectives) >= 2 else "")
        )
    extra = {"device": problem.device} if problem.device else {}
    return [
        flat(
            c,
            **extra,
            **({"measured_latency_ms": measured[c.arch_id]} if c.arch_id in measured else {}),
        )
        for c in result.front
    ]


def _measure(
    cfg: SearchConfig, problem: Problem, accuracy: Any, front: list[Candidate], quiet: bool
) -> dict[str, float]:
    if not (cfg.measure and problem.latency is not None and accuracy is not None and front):
        return {}
    if not problem.latency.local:
        if not quiet:
            console.print(
                f"[dim]device {problem.device} was profiled elsewhere: front not "
                "measured here[/dim]"
            )
        return {}
    from nas.search.objectives import measure_latency

    measured = measure_latency(
        accuracy.supernet,
        [c.arch for c in front],
        device=str(problem.device),
        meta=problem.latency.meta,
    )
    if not quiet and measured:
        errors = [
            abs(c.values[LATENCY] - measured[c.arch_id]) / measured[c.arch_id]
            for c in front
            if LATENCY in c.values and measured.get(c.arch_id)
        ]
        if errors:
            console.print(
                f"front measured on this machine ({problem.device}): predicted latency is off by "
                f"{100 * statistics.median(errors):.1f}% (median), {100 * max(errors):.1f}% (max)"
            )
    return measured


def search(
    ctx: typer.Context,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Run with a trained supernet and profiled devices (optional with --oracle).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="Profiled device to search for; repeat for one front per device.",
            show_default=False,
        ),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            "--objectives",
            help="Comma-separated metrics: top1, latency, macs, params or oracle columns; "
            "NAME:max|min sets the direction (default: top1,latency).",
            show_default=False,
        ),
    ] = None,
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--algorithm",
            help="evolution, nsga2, optuna-tpe, optuna-nsga2 or random "
            "(default: nsga2 for 2+ objectives).",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget", help="Distinct subnets to score (default: 500).", show_default=False
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option("--population", help="Population size (default: 50).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the search (default: 0).", show_default=False),
    ] = None,
    latency_max: Annotated[
        float | None,
        typer.Option(
            "--latency-max",
            help="Latency bound in ms (checked before any accuracy evaluation).",
            show_default=False,
        ),
    ] = None,
    macs_max: Annotated[
        float | None,
        typer.Option("--macs-max", help="MACs bound in millions.", show_default=False),
    ] = None,
    params_max: Annotated[
        float | None,
        typer.Option("--params-max", help="Parameter bound in millions.", show_default=False),
    ] = None,
    accuracy: Annotated[
        str | None,
        typer.Option(
            "--accuracy",
            help="supernet: evaluate every candidate on data after BN recalibration; predictor:"
            " an online accuracy predictor skips candidates that cannot reach the front.",
            show_default=False,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna RDB URL of the study, shareable by several processes "
            "(default: sqlite file in the search folder).",
            show_default=False,
        ),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            help="Name of this search: runs/NAME/search/TAG/ and the study name "
            "(default: the device).",
            show_default=False,
        ),
    ] = None,
    oracle: Annotated[
        Path | None,
        typer.Option(
            "--oracle",
            help="JSONL table of metrics per subnet to search instead of a supernet.",
            show_default=False,
        ),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            "--space", help="Search space of the --oracle table (e.g. nb201).", show_default=False
        ),
    ] = None,
    skip_missing: Annotated[
        bool | None,
        typer.Option(
            "--skip-missing",
            help="With --oracle: skip subnets the table lacks instead of failing.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Search subnets for the best accuracy/latency trade-off on each device."""
    cfg = resolve_config(ctx, SearchConfig, config)
    import nas.search  # noqa: F401  (registers the searchers)
    from nas.search.base import SEARCHERS

    if cfg.algorithm is not None:
        SEARCHERS.get(cfg.algorithm)  # unknown names fail here with the valid list
    devices = list(dict.fromkeys(device or []))
    root = resolve_runs_dir(runs_dir)
    if oracle is not None:
        problems, run_dir, space_obj, accuracy_src = _oracle_setup(
            cfg, oracle, space, run, root, devices
        )
    else:
        if run is None or not devices:
            raise ConfigError(
                "expected --run NAME and --device D (or --oracle FILE --space SPACE)"
            )
        from nas.search.objectives import run_space

        run_dir = RunDir(root, run).require()
        space_obj = run_space(run_dir)
        problems, accuracy_src = _supernet_problems(cfg, run_dir, space_obj, devices)
        for problem in problems:
            if problem.latency is not None and problem.latency.warning and not as_json:
                err_console.print(f"[yellow]warning:[/yellow] {problem.latency.warning}")
    header = {"space": space_obj.spec(), "run": run_dir.name}
    fronts = []
    for problem in problems:
        base = tag or problem.device or "oracle"
        this_tag = f"{tag}-{problem.device}" if tag and len(problems) > 1 else base
        fronts += _search_one(
            cfg, run_dir, this_tag, problem, space_obj, accuracy_src, as_json, header
        )
    if as_json:
        typer.echo(json.dumps(fronts, indent=2, sort_keys=True))


def _oracle_setup(
    cfg: SearchConfig,
    path: Path,
    space_name: str | None,
    run: str | None,
    root: Path,
    devices: list[str],
) -> tuple[list[Problem], RunDir, Any, Any]:
    from nas.search.oracle import Oracle
    from search_spaces import create_space

    if space_name is None:
        raise ConfigError("--oracle: expected --space SPACE naming the table's search space")
    space = create_space(space_name)
    table = Oracle.load(path, space, skip_missing=cfg.skip_missing)
    run_dir = RunDir(root, run or f"oracle-{space_name}")
    if not run_dir.exists():
        run_dir.update_manifest(space=space.spec())
    return _oracle_problems(cfg, table, space, devices), run_dir, space, None


def register(app: typer.Typer) -> None:
    """Add `search` to the root app."""
    app.command("search")(search)


__all__ = ["SearchConfig", "register", "search"]
