"""How far a search may trust its supernet: the run's latest ranking report, read back.

`nas search` scores subnets by their accuracy inside the supernet; `nas rank` measures how well
that ranks them (Kendall tau against a truth). When the supernet ranks them no better than
their parameter count, a search optimising it learns nothing the size did not already say: the
search shows both taus and warns, as it warns about a poor latency predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas.artifacts import RunLayout, read_json
from nas.errors import ArtifactError
from nas.rank.report import REPORT_JSON

SUPERNET, PARAMS = "supernet", "params"


@dataclass(frozen=True)
class SupernetTrust:
    """The Kendall taus of the supernet and of the parameter count in one ranking report.

    Attributes:
        tag: the ranking (`rank/<tag>/`).
        n: subnets ranked.
        supernet: the supernet's tau `{"value", "low", "high"}` (None when undefined).
        params: the parameter count's.
    """

    tag: str
    n: int
    supernet: dict[str, float | None]
    params: dict[str, float | None]

    @property
    def summary(self) -> str:
        """One line: both taus with their intervals."""
        return (f"ranking '{self.tag}' ({self.n} subnets): supernet Kendall tau "
                f"{_text(self.supernet)}, parameter count {_text(self.params)}")

    @property
    def warning(self) -> str | None:
        """Why the supernet's accuracy should not be trusted, or None."""
        supernet, params = self.supernet.get("value"), self.params.get("value")
        if supernet is None or params is None or supernet > params:
            return None
        return (f"the supernet ranks subnets no better than their parameter count (Kendall tau "
                f"{supernet:.3f} vs {params:.3f}, `nas rank` '{self.tag}'); its accuracies "
                "may mislead the search: train the supernet longer or check it with `nas rank`")


def supernet_trust(layout: RunLayout) -> SupernetTrust | None:
    """The newest ranking of `layout` that scored the supernet, or None when there is none.

    An unreadable report is passed over (it never blocks a search).
    """
    root = layout.ranks_dir
    reports = sorted(root.glob(f"*/{REPORT_JSON}"), key=lambda p: p.stat().st_mtime,
                     reverse=True) if root.is_dir() else []
    for path in reports:
        try:
            report = read_json(path)
        except ArtifactError:
            continue
        scores = report.get("scores") if isinstance(report, dict) else None
        if isinstance(scores, dict) and SUPERNET in scores and PARAMS in scores:
            return SupernetTrust(path.parent.name, int(report.get("n") or 0),
                                 _tau(scores[SUPERNET]), _tau(scores[PARAMS]))
    return None


def _tau(metrics: Any) -> dict[str, float | None]:
    tau = metrics.get("kendall_tau") if isinstance(metrics, dict) else None
    if not isinstance(tau, dict):
        return {"value": None, "low": None, "high": None}
    return {key: _number(tau.get(key)) for key in ("value", "low", "high")}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _text(tau: dict[str, float | None]) -> str:
    value, low, high = tau.get("value"), tau.get("low"), tau.get("high")
    if value is None:
        return "undefined"
    return f"{value:.3f}" + ("" if low is None or high is None else f" [{low:.2f}, {high:.2f}]")


__all__ = ["SupernetTrust", "supernet_trust"]
