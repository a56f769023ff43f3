"""One profiling session: time the blocks and the sampled subnets, in interleaved rounds.

Why rounds: on a machine whose speed drifts (a VM, a phone warming up, other processes), one
measurement per subnet carries that moment's state; a subnet caught by a burst of contention
is off by 20-30 % and the predictors are then scored against a wrong target. Every subnet is
therefore measured in `rounds` passes spread over the session (blocks likewise), and a subnet
whose measurements disagree by more than `agree` gets one more: its lowest value (see
`nas.profile.fit`) is robust to bad moments. Budget: blocks first (at most 30 % of
`--budget-minutes`), then subnet rounds (until 90 %). With one round, a tenth of the subnets
is measured again at the end for the noise floor. Every measurement is appended to the store
as it is taken, so a killed session resumes where it stopped (records taken with other
settings are not reused).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nas.arch import arch_id
from nas.artifact_kinds import REFERENCE as REFERENCE_KIND
from nas.artifacts import atomic_write_json, read_json
from nas.profile.devices import Device, Runner
from nas.profile.measure import MeasureSettings, Timing, measure, measure_relative
from nas.profile.sampling import stratified_sample
from nas.profile.store import REFERENCE, ProfileStore
from predictors.features import key_universe
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

BLOCK_SHARE = 0.3
# later block rounds only while the subnets still have most of the budget
LATE_BLOCK_SHARE = 0.5
SUBNET_SHARE = 0.9


@dataclass(frozen=True)
class ProfilePlan:
    """What a session measures.

    Attributes:
        samples: number of subnets to measure.
        batch_size: batch size of every timed call.
        budget_s: wall-clock budget of the session in seconds (None: no limit).
        blocks: whether to measure the per-block table.
        repeat_share: with one round, the share of subnets measured a second time (for the
            noise floor); with more rounds every subnet has repeated measurements.
        rounds: passes over all subnets and blocks; a subnet's latency is the lowest of its
            rounds' values, a block's the median.
        agree: relative disagreement between a subnet's measurements above which it is
            measured once more (a tie-break against one disturbed measurement).
        seed: seeds the subnet sample.
        settings: how each model is timed.
        reference: time every model relative to a fixed reference subnet, call by call
            (`measure_relative`): steadier on a machine whose load changes.
    """

    samples: int = 300
    batch_size: int = 1
    budget_s: float | None = None
    blocks: bool = True
    repeat_share: float = 0.1
    rounds: int = 3
    agree: float = 0.05
    seed: int = 0
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    reference: bool = False


@dataclass(frozen=True)
class Progress:
    """A progress event: `phase` is "blocks", "subnets", "tie-breaks" or "repeats"
    (later rounds are "blocks 2/2", "subnets 2/2" ...)."""

    phase: str
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    estimate_within10: float | None = None


ProgressCallback = Callable[[Progress], None]
Estimator = Callable[[], float | None]


def setup_of(device: Device, batch_size: int) -> dict[str, Any]:
    return {"device": device.name, "batch_size": batch_size, "threads": device.threads,
            "clock": device.clock}


def _record(timing: Timing, setup: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**fields, "latency_ms": timing.median_ms, "q1_ms": timing.q1_ms,
            "q3_ms": timing.q3_ms, "n": timing.n, "remeasured": timing.remeasured,
            "setup": setup}


class Session:
    """Runs a `ProfilePlan` for one space, supernet and device, writing into `store`."""

    def __init__(
        self, space: SearchSpace, supernet: Any, device: Device, store: ProfileStore,
        plan: ProfilePlan, *, on_progress: ProgressCallback | None = None,
        estimator: Estimator | None = None,
    ) -> None:
        self.space, self.supernet, self.device, self.store = space, supernet, device, store
        self.plan = plan
        self.setup = setup_of(device, plan.batch_size)
        self.on_progress = on_progress or (lambda progress: None)
        self.estimator = estimator
        self.start = time.perf_counter()
        # blocks get half the timed duration of subnets: a lookup-table sum adds ~20 blocks,
        # whose independent errors partly cancel, and there are many blocks to time
        self.block_settings = replace(plan.settings, target_ms=plan.settings.target_ms / 2)
        self.reference: Runner | None = None
        self.reference_ms = 0.0
        if plan.reference:
            self.setup = {**self.setup, "reference": True}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _over(self, share: float) -> bool:
        budget = self.plan.budget_s
        return budget is not None and self.elapsed() > share * budget

    def _time(
        self, model: Any, side: int | None, shape: tuple[int, ...] | None = None,
        settings: MeasureSettings | None = None,
    ) -> Timing:
        if shape is None:
            channels = int(getattr(self.space, "in_channels", 3))
            shape = (self.plan.batch_size, channels, int(side or 32), int(side or 32))
        runner = self.device.prepare(model, shape)
        settings = settings or self.plan.settings
        if self.reference is None:
            return measure(runner, settings)
        return measure_relative(runner, self.reference, self.reference_ms, settings)

    def _prepare_reference(self) -> None:
        """The reference subnet (the space's smallest) and its latency, kept for resumes."""
        if not self.plan.reference:
            return
        arch = self.space.smallest()
        side = self.supernet.input_resolution(arch) if hasattr(self.supernet, "input_resolution") \
            else arch.get("resolution")
        channels = int(getattr(self.space, "in_channels", 3))
        shape = (self.plan.batch_size, channels, int(side or 32), int(side or 32))
        runner = self.device.prepare(self.supernet.extract_subnet(arch), shape)
        stored = self.store.profile_dir / REFERENCE
        known = read_json(stored, REFERENCE_KIND) if stored.is_file() else {}
        if known.get("setup") == self.setup:
            self.reference_ms = float(known["latency_ms"])
        else:
            self.reference_ms = measure(runner, self.plan.settings).median_ms
            atomic_write_json(stored, {"setup": self.setup, "arch": arch,
                                       "latency_ms": self.reference_ms})
        self.reference = runner

    def _emit(
        self, phase: str, done: int, total: int, started: float, estimate: float | None
    ) -> None:
        spent = time.perf_counter() - started
        eta = spent / done * (total - done) if done else None
        self.on_progress(Progress(phase, done, total, self.elapsed(), eta, estimate))

    def _phase(self, name: str, round_index: int) -> str:
        return name if self.plan.rounds == 1 else f"{name} {round_index + 1}/{self.plan.rounds}"

    def measure_blocks(self, round_index: int = 0) -> int:
        """Time every block key measured fewer than `round_index + 1` times; returns how many."""
        if not (self.plan.blocks and self.space.has_blocks):
            return 0
        taken = Counter(r["block"] for r in self.store.records(self.store.blocks_path, self.setup))
        universe = key_universe(self.space, self.space.input_sizes())
        todo = [k for k in universe if taken[k] <= round_index]
        share = BLOCK_SHARE if round_index == 0 else LATE_BLOCK_SHARE
        started = time.perf_counter()
        for index, key in enumerate(todo):
            if self._over(share):
                if round_index == 0:
                    logger.warning("time budget: %d of %d blocks left unmeasured",
                                   len(todo) - index, len(todo))
                return index
            module, shape = self.supernet.block_module(key)
            shape = (self.plan.batch_size, *tuple(shape)[1:])
            timing = self._time(module, None, shape, self.block_settings)
            self.store.append(self.store.blocks_path,
                              _record(timing, self.setup, block=key, round=round_index))
            self._emit(self._phase("blocks", round_index), index + 1, len(todo), started, None)
        return len(todo)

    def _measure_arch(self, arch: dict[str, Any], path: Any, **fields: Any) -> Timing:
        model = self.supernet.extract_subnet(arch)
        side = self.supernet.input_resolution(arch) if hasattr(self.supernet, "input_resolution") \
            else arch.get("resolution")
        timing = self._time(model, side)
        self.store.append(path, _record(timing, self.setup, arch=arch, arch_id=arch_id(arch),
                                        **fields))
        return timing

    @functools.cached_property
    def sample(self) -> list[dict[str, Any]]:
        """The subnets this session measures (every round walks the same list)."""
        return stratified_sample(self.space, self.plan.samples,
                                 np.random.default_rng(self.plan.seed))

    def _measure_all(self, phase: str, archs: list[dict[str, Any]], **fields: Any) -> int:
        """Time each of `archs` once (until the subnet budget is spent); returns how many."""
        started, estimate = time.perf_counter(), None
        for index, arch in enumerate(archs):
            if self._over(SUBNET_SHARE):
                logger.warning("time budget: %s: measured %d of %d subnets", phase, index,
                               len(archs))
                return index
            self._measure_arch(arch, self.store.latency_path, **fields)
            if self.estimator is not None and (index + 1) % 10 == 0:
                estimate = self.estimator()
            self._emit(phase, index + 1, len(archs), started, estimate)
        return len(archs)

    def _latencies(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for record in self.store.records(self.store.latency_path, self.setup):
            found.setdefault(record["arch_id"], []).append(float(record["latency_ms"]))
        return found

    def measure_subnets(self, round_index: int = 0) -> list[dict[str, Any]]:
        """One pass over the sampled subnets measured fewer than `round_index + 1` times.

        Returns every record of this setup (all rounds so far).
        """
        taken = self._latencies()
        todo = [a for a in self.sample if len(taken.get(arch_id(a), ())) <= round_index]
        if round_index > 0:
            # later rounds only revisit subnets that earlier rounds reached
            todo = [a for a in todo if arch_id(a) in taken]
        self._measure_all(self._phase("subnets", round_index), todo, round=round_index)
        return self.store.records(self.store.latency_path, self.setup)

    def break_ties(self) -> int:
        """Measure once more each subnet whose measurements disagree by more than `agree`."""
        taken = self._latencies()
        todo = []
        for arch in self.sample:
            values = taken.get(arch_id(arch), [])
            spread = max(values) / min(values) - 1 if values else 0.0
            if len(values) == self.plan.rounds and spread > self.plan.agree:
                todo.append(arch)
        return self._measure_all("tie-breaks", todo, round=self.plan.rounds)

    def measure_repeats(self, measured: list[dict[str, Any]]) -> int:
        """Measure a spread-out share of the subnets again (the noise floor)."""
        repeated = {r["arch_id"] for r in self.store.records(self.store.repeats_path, self.setup)}
        count = max(2, int(round(self.plan.repeat_share * len(measured))))
        picks = np.linspace(0, len(measured) - 1, min(count, len(measured))).astype(int)
        todo = [measured[i] for i in sorted(set(picks)) if measured[i]["arch_id"] not in repeated]
        started = time.perf_counter()
        for index, record in enumerate(todo):
            if self._over(1.0):
                return index
            self._measure_arch(dict(record["arch"]), self.store.repeats_path)
            self._emit("repeats", index + 1, len(todo), started, None)
        return len(todo)

    def run(self) -> dict[str, Any]:
        """Blocks and subnets in rounds, tie-breaks (or repeats); returns what was measured."""
        self._prepare_reference()
        blocks = 0
        for round_index in range(self.plan.rounds):
            blocks += self.measure_blocks(round_index)
            measured = self.measure_subnets(round_index)
        tie_breaks = self.break_ties() if self.plan.rounds > 1 else 0
        repeats = self.measure_repeats(measured) if measured and self.plan.rounds == 1 else 0
        return {"blocks_measured": blocks, "subnets_total": len(self._latencies()),
                "measurements": len(measured), "rounds": self.plan.rounds,
                "tie_breaks": tie_breaks, "repeats_measured": repeats,
                "seconds": round(self.elapsed(), 1), "setup": self.setup,
                "reference_ms": self.reference_ms or None}
