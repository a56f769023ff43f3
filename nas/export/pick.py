"""Choosing the subnet to export: `--pick best | INDEX | latency<=MS | CONFIG`.

The first three read a search's Pareto front (`runs/NAME/search/TAG/pareto.json`); CONFIG is
inline JSON or a JSON file in any format the space's `normalize` accepts.

- `best`: the highest accuracy among front members that meet the search's constraints, with
  the latency measured on this machine when the search measured it (a member predicted
  within the budget but measured over it is not picked);
- `INDEX`: the front member at that position (0-based, as `nas search` lists them);
- `latency<=MS`: the most accurate front member whose latency on `--device` is at most MS
  (the search's own latency when it searched for that device, else a latency function, usually
  the device's predictor).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch import arch_id as compute_arch_id
from nas.arch import parse_arch_argument
from nas.artifact_kinds import PARETO
from nas.artifacts import read_json
from nas.errors import ArtifactError, ConfigError

LATENCY_RULE = re.compile(r"^\s*latency\s*<=?\s*([0-9]*\.?[0-9]+)\s*(ms)?\s*$", re.IGNORECASE)
ACCURACY_NAMES = ("top1", "accuracy", "val_top1", "acc")

LatencyFn = Callable[[Sequence[Mapping[str, Any]]], Sequence[float]]


@dataclass(frozen=True)
class FrontEntry:
    """One member of a Pareto front."""

    index: int
    arch: dict[str, Any]
    arch_id: str
    values: dict[str, float]
    violation: float = 0.0
    measured_latency: float | None = None  # ms, timed by the search on the profiled machine


@dataclass(frozen=True)
class Front:
    """A search's Pareto front with the objectives and constraints it was searched under."""

    path: Path
    entries: tuple[FrontEntry, ...]
    objectives: tuple[dict[str, Any], ...]
    constraints: tuple[dict[str, Any], ...]
    device: str | None
    config: dict[str, Any] = field(default_factory=dict)  # the search's resolved options

    @property
    def accuracy_key(self) -> str:
        """The maximised metric (top-1), found from the objectives or by name."""
        for objective in self.objectives:
            if objective.get("direction") == "maximize":
                return str(objective["name"])
        keys = self.entries[0].values if self.entries else {}
        for name in ACCURACY_NAMES:
            if name in keys:
                return name
        raise ArtifactError(f"{self.path}: no accuracy metric among {sorted(keys)}")

    @property
    def latency_key(self) -> str | None:
        names = [str(o["name"]) for o in self.objectives] + sorted(
            self.entries[0].values if self.entries else {}
        )
        return next((n for n in names if n.startswith("latency")), None)

    def meets_constraints(self, entry: FrontEntry) -> bool:
        """Within every constraint, by the search's values and by measured latency."""
        ok = entry.violation <= 0 and self._within(entry.values)
        return ok and not self.over_measured(entry)

    def over_measured(self, entry: FrontEntry) -> bool:
        """Whether the latency measured by the search breaks a latency constraint."""
        if entry.measured_latency is None:
            return False
        latency = {str(c.get("metric")): entry.measured_latency for c in self.constraints
                   if str(c.get("metric")).startswith("latency")}
        return not self._within(latency)

    def _within(self, values: Mapping[str, float]) -> bool:
        """Every constraint on a metric of `values` holds (others are not checked)."""
        for constraint in self.constraints:
            value = values.get(str(constraint.get("metric")))
            if value is None or math.isnan(value):
                continue  # the search recorded no value: it could not have enforced it either
            if constraint.get("max") is not None and value > float(constraint["max"]):
                return False
            if constraint.get("min") is not None and value < float(constraint["min"]):
                return False
        return True


@dataclass(frozen=True)
class Pick:
    """The chosen subnet and why it was chosen (for the model card)."""

    arch: dict[str, Any]
    rule: str
    reason: str
    entry: FrontEntry | None = None


def _entry(index: int, raw: Any, path: Path) -> FrontEntry:
    if not isinstance(raw, Mapping) or "arch" not in raw:
        raise ArtifactError(f"{path}: front member {index} has no 'arch' (got {str(raw)[:80]})")
    values = raw.get("values", raw.get("metrics", {}))
    numbers = {str(k): float(v) for k, v in values.items() if isinstance(v, (int, float))}
    # null: an infinite violation (a constraint's metric could not be computed)
    violation = math.inf if raw.get("violation", 0.0) is None else float(raw.get("violation")
                                                                          or 0.0)
    if raw.get("feasible") is False:
        violation = max(violation, 1.0)
    arch = dict(raw["arch"])
    measured = raw.get("measured_latency_ms")
    return FrontEntry(index, arch, str(raw.get("arch_id") or compute_arch_id(arch)), numbers,
                      violation, float(measured) if isinstance(measured, (int, float)) else None)


def read_front(path: Path) -> Front:
    """Read `pareto.json`: `{"front": [...], "objectives", "constraints", "device"}` or a list.

    Each member is `{"arch", "arch_id", "values": {metric: number}}` (`metrics` also accepted).
    """
    data = read_json(path, PARETO)
    if isinstance(data, list):
        data = {"front": data}
    if not isinstance(data, Mapping):
        raise ArtifactError(f"{path}: expected a JSON object with a 'front' list")
    raw_front = data.get("front", data.get("pareto", data.get("candidates")))
    if not isinstance(raw_front, list):
        raise ArtifactError(f"{path}: expected a 'front' list of subnets, got none")
    constraints = [dict(c) for c in data.get("constraints") or [] if isinstance(c, Mapping)]
    search_cfg = dict(data["config"]) if isinstance(data.get("config"), Mapping) else {}
    device = data.get("device") or search_cfg.get("device")
    return Front(
        path=path,
        entries=tuple(_entry(i, raw, path) for i, raw in enumerate(raw_front)),
        objectives=tuple(dict(o) for o in data.get("objectives") or [] if isinstance(o, Mapping)),
        constraints=tuple(constraints),
        device=str(device) if device else None,
        config=search_cfg,
    )


def pick(
    rule: str,
    *,
    front: Front | None,
    normalize: Callable[[Any], dict[str, Any]],
    device: str | None = None,
    latency_fn: LatencyFn | None = None,
) -> Pick:
    """Apply a `--pick` rule (see the module docstring).

    Args:
        rule: `best`, an integer, `latency<=MS` or a CONFIG (inline JSON / JSON file).
        front: the search's front (None when there is no search; only CONFIG then works).
        normalize: the space's `normalize` (validates and canonicalises archs).
        device: the device `latency<=MS` refers to (default: the search's device).
        latency_fn: latencies in ms on `device` for archs, used when the front's latencies
            were measured for another device.
    """
    text = rule.strip()
    if text.startswith(("{", "[")) or (text not in ("best",) and Path(text).is_file()):
        arch = normalize(parse_arch_argument(text))
        source = "inline JSON" if text.startswith(("{", "[")) else f"file {text}"
        return Pick(arch, "config", f"given config ({source})")
    if front is None:
        raise ConfigError(
            f"--pick {text}: needs a search's Pareto front, but the run has none; run "
            "`nas search --run NAME` first or pass a subnet config (JSON or file)"
        )
    if not front.entries:
        raise ArtifactError(f"{front.path}: the Pareto front is empty (no feasible subnet found)")
    if text == "best":
        return _pick_best(front, normalize)
    if re.fullmatch(r"-?\d+", text):
        return _pick_index(front, int(text), normalize)
    match = LATENCY_RULE.match(text)
    if match:
        return _pick_latency(front, float(match.group(1)), normalize, device, latency_fn)
    raise ConfigError(
        f"--pick: expected best, an index into the front, latency<=MS, or a subnet config "
        f"(inline JSON or a JSON file), got '{rule}'"
    )


def _pick_best(front: Front, normalize: Callable[[Any], dict[str, Any]]) -> Pick:
    key = front.accuracy_key
    ok = [e for e in front.entries if front.meets_constraints(e) and key in e.values]
    over = sum(front.over_measured(e) for e in front.entries)
    measured = f" ({over} measured over the latency budget on this machine)" if over else ""
    if not ok:
        raise ArtifactError(
            f"{front.path}: no front member meets the search's constraints "
            f"({_describe(front.constraints)}){measured}; use --pick INDEX or latency<=MS"
        )
    best = max(ok, key=lambda e: (e.values[key], -e.index))
    reason = f"best: highest {key} ({best.values[key]:.4g}) of {len(ok)} front members"
    if front.constraints:
        reason += f" meeting {_describe(front.constraints)}"
    if over:
        reason += f"; {over} skipped: measured over the latency budget"
    return Pick(normalize(best.arch), "best", reason, best)


def _pick_index(front: Front, index: int, normalize: Callable[[Any], dict[str, Any]]) -> Pick:
    n = len(front.entries)
    if not -n <= index < n:
        raise ConfigError(f"--pick {index}: expected an index in 0..{n - 1} (the front has {n})")
    entry = front.entries[index]
    return Pick(normalize(entry.arch), "index", f"front member {entry.index} of {n}", entry)


def _pick_latency(
    front: Front, budget: float, normalize: Callable[[Any], dict[str, Any]],
    device: str | None, latency_fn: LatencyFn | None,
) -> Pick:
    key, latency_key = front.accuracy_key, front.latency_key
    target = device or front.device
    same_device = device is None or front.device is None or device == front.device
    if same_device and latency_key is not None:
        latencies = [e.values.get(latency_key, math.inf) for e in front.entries]
        source = f"the search's {latency_key}"
    elif latency_fn is not None:
        latencies = [float(v) for v in latency_fn([e.arch for e in front.entries])]
        source = f"the latency predictor of '{target}'"
    else:
        raise ConfigError(
            f"--pick latency<={budget:g}: no latency for device '{target}' (the search used "
            f"'{front.device}'); profile it with `nas profile --run NAME --device {target}`"
        )
    ok = [(e, lat) for e, lat in zip(front.entries, latencies, strict=True)
          if lat <= budget and key in e.values]
    if not ok:
        fastest = min(latencies)
        raise ConfigError(
            f"--pick latency<={budget:g}: no front member is that fast on '{target}' "
            f"(fastest: {fastest:.3g} ms by {source}); raise the budget"
        )
    entry, latency = max(ok, key=lambda pair: (pair[0].values[key], -pair[1]))
    reason = (f"latency<={budget:g} ms on '{target}': most accurate ({entry.values[key]:.4g} "
              f"{key}) of {len(ok)} members within budget, {latency:.3g} ms by {source}")
    return Pick(normalize(entry.arch), "latency", reason, entry)


def _describe(constraints: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for c in constraints:
        if c.get("min") is not None:
            parts.append(f"{c.get('metric')} >= {c['min']}")
        if c.get("max") is not None:
            parts.append(f"{c.get('metric')} <= {c['max']}")
    return " and ".join(parts) or "no constraints"
