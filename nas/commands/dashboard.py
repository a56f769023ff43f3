"""`nas dashboard RUN`: a run's search study in optuna-dashboard (optional dependency)."""

from __future__ import annotations

from typing import Annotated

import typer

from nas.artifacts import RunDir
from nas.commands._common import RunsDirOption, console, resolve_runs_dir
from nas.errors import ArtifactError, ConfigError


def study_storage(run: RunDir, tag: str | None) -> tuple[str, str]:
    """(tag, Optuna storage URL) of search `tag` of `run` (default: the newest search)."""
    from nas.export.from_run import search_tags

    tags = search_tags(run)
    if tag is None:
        if not tags:
            raise ArtifactError(f"run '{run.name}' has no search yet; run `nas search --run "
                                f"{run.name} --device D` first")
        tag = tags[0]
    stage = run.manifest().get("stages", {}).get(f"search-{tag}") or {}
    storage = (stage.get("config") or {}).get("storage")
    if storage:
        return tag, str(storage)
    path = run.search_dir(tag) / "study.db"
    if not path.is_file():
        raise ArtifactError(f"run '{run.name}' has no study for search '{tag}' ({path} is "
                            f"missing); searches there: {', '.join(tags) or 'none'}")
    return tag, f"sqlite:///{path.resolve()}"


def dashboard_command(
    run: Annotated[str, typer.Argument(help="Run whose search to show.")],
    tag: Annotated[str | None, typer.Option(
        "--tag", help="The search (default: the newest).", show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    runs_dir: RunsDirOption = None,
) -> None:
    """Open a run's search study in optuna-dashboard (trials, Pareto front, history)."""
    the_run = RunDir(resolve_runs_dir(runs_dir), run).require()
    tag, storage = study_storage(the_run, tag)
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise ConfigError("nas dashboard needs optuna-dashboard: pip install 'nas[dashboard]' "
                          "(or pip install optuna-dashboard)") from None
    if not 0 < port < 65536:
        raise ConfigError(f"--port: expected 1..65535, got {port}")
    console.print(f"search '{tag}' of run '{run}': http://{host}:{port}/ (Ctrl-C stops)",
                  soft_wrap=True)
    try:
        run_server(storage, host=host, port=port)
    except KeyboardInterrupt:
        raise typer.Exit(code=0) from None


def register(app: typer.Typer) -> None:
    """Add `dashboard` to the root app."""
    app.command("dashboard")(dashboard_command)


__all__ = ["dashboard_command", "register", "study_storage"]
