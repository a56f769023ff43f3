"""The shared training loop with a minimal trainer: positions, checkpoints, logs, signals."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.artifacts import read_jsonl
from nas.errors import ArtifactError, ConfigError
from nas.train.checkpoint import load_checkpoint
from nas.train.loop import LoopOptions, StepLog, TrainingLoop
from nas.train.trainer import Phase, Ratio, SingleNetTrainer, StepOutput


@dataclass(frozen=True)
class LineConfig:
    epochs: int = 3
    seed: int = 0
    lr: float = 0.1


class LineTrainer(SingleNetTrainer):
    """Fits y = 2x with SGD on 4 batches per epoch drawn from (seed, epoch), with dropout."""

    kind = "line"
    resume_keys = ("epochs", "seed")

    def __init__(self, config: LineConfig) -> None:
        self.config = config
        self.net = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(1, 1))
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr)
        self.epoch_records: list[tuple[int, Mapping[str, float]]] = []

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("warm", 1), Phase("main", self.config.epochs - 1))

    @property
    def steps_per_epoch(self) -> int:
        return 4

    def batches(self, epoch: int, *, start_batch: int) -> Iterable[Any]:
        x = torch.randn(4, 8, 1, generator=torch.Generator().manual_seed(self.config.seed + epoch))
        return ((x[i], 2 * x[i]) for i in range(start_batch, 4))

    def train_step(self, batch: Any, *, step: int) -> StepOutput:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        metrics = {"loss": value, "hits": Ratio(step % 2, 1)}
        return StepOutput(loss=value, images=8, metrics=metrics)

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> dict[str, Any]:
        self.epoch_records.append((epoch, dict(means)))
        return {"mean_loss": means["loss"]} if epoch % 2 == 0 else {}


def _loop(tmp_path: Path, config: LineConfig | None = None, **options: Any) -> TrainingLoop:
    torch.manual_seed(0)
    trainer = LineTrainer(config or LineConfig())
    options.setdefault("log_every", 2)
    return TrainingLoop(trainer, tmp_path, options=LoopOptions(**options), label="run 'line'")


def _weights(loop: TrainingLoop) -> list[torch.Tensor]:
    return [p.detach().clone() for p in loop.trainer.net.parameters()]


def test_phases_epochs_and_logs(tmp_path: Path) -> None:
    loop = _loop(tmp_path)
    result = loop.run(loop.load(resume=False))
    assert result.completed and result.steps == 12 and result.epochs_done == 3
    trainer = loop.trainer
    assert isinstance(trainer, LineTrainer)
    assert [epoch for epoch, _ in trainer.epoch_records] == [0, 1, 2]  # counted over the run
    first = trainer.epoch_records[0][1]
    assert first["hits"] == 0.5 and first["seconds"] > 0
    records = list(read_jsonl(loop.metrics_file))
    windows = [r for r in records if "lr" in r]
    assert [r["step"] for r in windows] == [2, 4, 6, 8, 10, 12]
    assert {r["phase"] for r in windows} == {"warm", "main"}
    epochs = [(r["phase"], r["epoch"], r["step"]) for r in records if "mean_loss" in r]
    assert epochs == [("warm", 0, 4), ("main", 1, 12)]  # epochs within their phase
    assert load_checkpoint(loop.checkpoint_file)["position"].phase == 2


def test_stop_and_resume_repeat_the_straight_run(tmp_path: Path) -> None:
    straight = _loop(tmp_path / "a")
    straight.run()
    first = _loop(tmp_path / "b", max_steps=6)
    assert not first.run().completed
    with (tmp_path / "b" / "metrics.jsonl").open("a") as log:
        log.write('{"step": 99}\n')  # a line past the stop
    again = _loop(tmp_path / "b")
    state = again.load(resume=True)
    result = again.run(state)
    assert result.resumed_from == 6 and result.steps == 12
    for a, b in zip(_weights(straight), _weights(again), strict=True):
        assert torch.equal(a, b)  # dropout too: the torch RNG came back from the checkpoint
    steps = [r["step"] for r in read_jsonl(again.metrics_file) if "lr" in r]
    assert steps == [2, 4, 6, 8, 10, 12]


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="has no checkpoint"):
        _loop(tmp_path).load(resume=True)
    _loop(tmp_path, max_steps=2).run()
    with pytest.raises(ConfigError, match="pass --resume"):
        _loop(tmp_path).load(resume=False)
    with pytest.raises(ConfigError, match="other options \\(option 'seed' was 0, got 1\\)"):
        _loop(tmp_path, LineConfig(seed=1)).load(resume=True)
    assert _loop(tmp_path).load(resume=None) is not None  # None: resume when there is one


def test_a_fresh_start_drops_old_log_lines(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "old": true}\n')
    _loop(tmp_path, max_steps=2).run()
    assert not any("old" in r for r in read_jsonl(tmp_path / "metrics.jsonl"))


def test_checkpoints_by_time(tmp_path: Path) -> None:
    saved: list[int | None] = []

    def look(log: StepLog) -> None:  # runs before the step's own checkpoint
        path = tmp_path / "checkpoint.pt"
        saved.append(load_checkpoint(path)["position"].step if path.is_file() else None)

    loop = _loop(tmp_path, checkpoint_seconds=0.0, max_steps=3)
    loop.on_step = look
    loop.run()
    assert saved == [None, 1, 2]


def test_a_signal_saves_a_checkpoint_and_stops(tmp_path: Path) -> None:
    # not necessarily Python's default: a job started in the background ignores SIGINT
    before = signal.getsignal(signal.SIGINT)
    loop = _loop(tmp_path, save_on_signal=True)
    loop.on_step = lambda log: os.kill(os.getpid(), signal.SIGINT) if log.step == 5 else None
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert load_checkpoint(loop.checkpoint_file)["position"].step == 5
    assert signal.getsignal(signal.SIGINT) == before  # handler given back


def test_each_step_reports_its_own_phase_and_epoch(tmp_path: Path) -> None:
    loop = _loop(tmp_path, LineConfig(epochs=3))
    seen: list[tuple[str, int, int]] = []
    loop.on_step = lambda log: seen.append((log.phase, log.epoch, log.step))
    loop.run(loop.load(resume=False))
    # an epoch's last step still belongs to that epoch (the position has moved on by then)
    assert seen == [("warm", 0, s) for s in range(1, 5)] + [("main", 0, s) for s in range(5, 9)] \
        + [("main", 1, s) for s in range(9, 13)]
