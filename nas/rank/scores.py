"""The scores of a ranking, kept as they are computed: `scores.jsonl` and `settings.json`.

Every subnet's scores are appended to `scores.jsonl` (one line per subnet and batch of scorers,
`{"arch_id", "scores": {SCORER: value}, "seconds": {SCORER: s}}`; JSON has no infinities, so
a score of minus infinity is written as the text "-Infinity", likewise "Infinity" and "NaN") the
moment they exist, so a ranking killed at any point and started again with the same options
recomputes nothing it had finished. `settings.json` records what the scores depend on (space,
seeds, proxy batches, the supernet's weights, stand-alone training); a rerun whose settings
differ is refused instead of mixing scores of two settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.artifact_kinds import RANK_SCORES, RANK_SETTINGS
from nas.artifacts import append_jsonl, atomic_write_json, read_json, read_jsonl
from nas.errors import ConfigError
from nas.readers import damaged

SCORES = "scores.jsonl"
SETTINGS = "settings.json"


class ScoreLog:
    """The scores already computed in a ranking folder, and where new ones go.

    Args:
        folder: the ranking folder (`runs/NAME/rank/TAG/`).
        settings: what the scores depend on (JSON-able); checked against the folder's.

    Raises:
        ConfigError: the folder holds scores computed with other settings.
    """

    def __init__(self, folder: Path, settings: Mapping[str, Any]) -> None:
        self.folder = folder
        self.path = folder / SCORES
        recorded_path = folder / SETTINGS
        current = _plain(settings)
        if recorded_path.is_file() and self.path.is_file():
            recorded = read_json(recorded_path, RANK_SETTINGS)
            changed = sorted(k for k in {*recorded, *current} if recorded.get(k) != current.get(k))
            if changed:
                raise ConfigError(
                    f"{folder} holds scores computed with other settings ('{changed[0]}' was "
                    f"{recorded.get(changed[0])!r}, got {current.get(changed[0])!r}); rerun "
                    "with the same options, or pick another --tag"
                )
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(recorded_path, current)
        self.values: dict[str, dict[str, float]] = {}
        self.seconds: dict[str, dict[str, float]] = {}
        self.cpu_seconds: dict[str, dict[str, float]] = {}  # older folders: none recorded
        for number, record in enumerate(read_jsonl(self.path, RANK_SCORES), start=1):
            try:
                self._merge(record["arch_id"], _numbers(record["scores"]),
                            _numbers(record.get("seconds") or {}),
                            _numbers(record.get("cpu_seconds") or {}))
            except ValueError:
                raise damaged(self.path, f"record {number}: a score is neither a number nor "
                              "Infinity, -Infinity or NaN", RANK_SCORES) from None

    def missing(self, arch_id: str, scorers: list[str]) -> list[str]:
        """Those of `scorers` without a value for `arch_id` yet."""
        known = self.values.get(arch_id, {})
        return [name for name in scorers if name not in known]

    def add(
        self, arch_id: str, scores: Mapping[str, float], seconds: Mapping[str, float],
        cpu_seconds: Mapping[str, float] | None = None,
    ) -> None:
        """Record new scores of one subnet (appended at once) with their wall-clock and CPU
        seconds (CPU time is the cost that does not grow with the machine's load)."""
        if not scores:
            return
        append_jsonl(self.path, {"arch_id": arch_id, "scores": _spelled(scores),
                                 "seconds": _spelled(seconds),
                                 "cpu_seconds": _spelled(cpu_seconds or {})})
        self._merge(arch_id, scores, seconds, cpu_seconds or {})

    def _merge(
        self, arch_id: str, scores: Mapping[str, float], seconds: Mapping[str, float],
        cpu_seconds: Mapping[str, float],
    ) -> None:
        self.values.setdefault(arch_id, {}).update({k: float(v) for k, v in scores.items()})
        self.seconds.setdefault(arch_id, {}).update({k: float(v) for k, v in seconds.items()})
        self.cpu_seconds.setdefault(arch_id, {}).update(
            {k: float(v) for k, v in cpu_seconds.items()})


def _spelled(values: Mapping[str, float]) -> dict[str, float | str]:
    """Scores as strict JSON: infinities and NaN as the texts `float()` reads back."""
    return {k: float(v) if math.isfinite(v) else repr(float(v)).replace("inf", "Infinity")
            .replace("nan", "NaN") for k, v in values.items()}


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """`_spelled` read back (null, from older files, as NaN); ValueError on other text."""
    return {k: math.nan if v is None else float(v) for k, v in values.items()}


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` as they read back from JSON (tuples become lists), so both compare equal."""
    import json

    plain: dict[str, Any] = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
    return plain


__all__ = ["SCORES", "SETTINGS", "ScoreLog"]
