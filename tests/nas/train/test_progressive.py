"""Progressive shrinking: phases run in order, unlock their keys only, distil from a teacher."""

from __future__ import annotations

from pathlib import Path

from conftest import toy_config
from train_toy import ToySpace

from nas.artifacts import RunDir, read_jsonl
from nas.data import BatchLoader
from nas.train.checkpoint import checkpoint_path
from nas.train.config import PhaseConfig, TrainConfig, default_phases
from nas.train.loop import StepLog
from nas.train.once_for_all import SupernetTraining
from nas.train.progressive import WarmupCosine, param_groups
from nas.train.samplers import make_sampler

PHASES = (
    PhaseConfig("full", 1, ()),
    PhaseConfig("kernel", 1, ("kernel_size",)),
    PhaseConfig("depth", 1, ("kernel_size", "depth")),
    PhaseConfig("width", 1, ("kernel_size", "depth", "width", "resolution")),
)


def test_ps_phases_unlock_in_order(tmp_path: Path, tiny_loader: BatchLoader) -> None:
    cfg: TrainConfig = toy_config(method="ps", phases=PHASES, epochs=4, num_random=1)
    space = ToySpace(num_classes=4, resolutions=[12, 16], image_size=16)
    net = space.build_supernet()
    run = RunDir(tmp_path, "ps")
    seen: list[tuple[str, dict]] = []
    reorganized_at: dict[str, int] = {}

    def on_step(log: StepLog) -> None:
        seen.extend((log.phase, arch) for arch in net.active_log)
        net.active_log.clear()
        reorganized_at.setdefault(log.phase, net.reorganized)

    sampler = make_sampler("uniform", space, resolutions=cfg.resolutions, seed=0)
    trainer = SupernetTraining(
        net, tiny_loader, cfg, sampler, checkpoint_file=checkpoint_path(run),
        metrics_file=run.sub("supernet", "metrics.jsonl"), space_spec=space.spec(),
        on_step=on_step,
    )
    net.active_log.clear()
    assert trainer.run().completed
    order = list(dict.fromkeys(phase for phase, _ in seen))
    assert order == ["full", "kernel", "depth", "width"]
    by_phase = {name: [arch for phase, arch in seen if phase == name] for name in order}
    largest = space.largest()
    assert all(arch == largest for arch in by_phase["full"])
    for name, free in (("kernel", {"kernel_size"}), ("depth", {"kernel_size", "depth"})):
        archs = by_phase[name]
        assert all(arch[k] == largest[k] for arch in archs for k in largest if k not in free)
        assert len({arch["kernel_size"] for arch in archs}) == 2  # the unlocked key varies
    assert {arch["width"] for arch in by_phase["width"]} == {4, 8}
    # channels were re-sorted once, right before the first phase that shrinks them
    assert reorganized_at == {"full": 0, "kernel": 0, "depth": 0, "width": 1}
    kd = {r["phase"]: r["kd_loss"] for r in read_jsonl(run.sub("supernet", "metrics.jsonl"))}
    assert kd["full"] == 0.0 and kd["kernel"] > 0.0  # later phases distil from the teacher
    assert trainer.teacher is not None and trainer.teacher.active() == largest


def test_default_phases_follow_ofa_order() -> None:
    phases = default_phases(10, 0.1)
    assert [p.name for p in phases] == ["full", "kernel", "depth", "expand"]
    assert phases[0].unlock == () and not phases[2].shrinks_channels
    assert phases[3].shrinks_channels and "expand_ratio" in phases[3].unlock
    assert sum(p.epochs for p in phases) == 10


def test_schedule_and_param_groups(toy_space: ToySpace) -> None:
    schedule = WarmupCosine(4, 20)
    factors = [schedule(step) for step in range(21)]
    assert factors[0] == 0.25 and factors[3] == 1.0 and factors[20] == 0.0
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))
    decay, no_decay = param_groups(toy_space.build_supernet(), 1e-4)
    assert all(p.ndim > 1 for p in decay["params"]) and decay["weight_decay"] == 1e-4
    assert all(p.ndim == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
