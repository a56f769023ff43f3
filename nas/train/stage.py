"""A run stage recorded around a piece of work: running, then done or interrupted."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from nas.artifacts import RunDir


@contextlib.contextmanager
def recorded_stage(
    run: RunDir,
    stage: str,
    *,
    config: Mapping[str, Any],
    seed: int | None,
    device: str,
    enabled: bool = True,
) -> Iterator[dict[str, Any]]:
    """Mark `stage` of `run` running; yields the summary dict the body fills.

    The stage ends "done" with that summary, or "interrupted" when the body raises (Ctrl-C
    included). `enabled=False` (data-parallel ranks other than 0) records nothing.
    """
    summary: dict[str, Any] = {}
    if enabled:
        run.begin_stage(stage, config=config, seed=seed, device=device)
    try:
        yield summary
    except BaseException:
        if enabled:
            run.end_stage(stage, status="interrupted")
        raise
    if enabled:
        run.end_stage(stage, summary=summary)
