"""The sandwich step: which subnets train, and that in-place distillation is used."""

from __future__ import annotations

import torch
from train_toy import ToySpace, ToySupernet

from nas.train.sandwich import (
    StepOptions,
    resize,
    sandwich_subnets,
    soft_cross_entropy,
    train_step,
)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 16, 16, generator=generator), torch.arange(n) % 4


def _spec(space: ToySpace, n_random: int = 2):
    randoms = [dict(space.largest(), width=4, depth=2), dict(space.smallest(), kernel_size=5)]
    return sandwich_subnets(space.largest(), space.smallest(), randoms[:n_random])


def test_step_trains_largest_smallest_and_random(
    toy_space: ToySpace, toy_net: ToySupernet
) -> None:
    images, labels = _batch()
    toy_net.active_log.clear()
    result = train_step(toy_net, toy_net, images, labels, _spec(toy_space), StepOptions())
    assert toy_net.active_log[0] == toy_space.largest()
    assert toy_net.active_log[1] == toy_space.smallest()
    assert len(toy_net.active_log) == 4
    assert set(result.losses) == {"largest", "smallest", "random"}
    assert result.seen == {"largest": 8, "smallest": 8, "random": 16}
    # gradients accumulated from every subnet: the wide half only gets them from width-8 nets
    assert toy_net.stem.grad is not None and toy_net.stem.grad[4:].abs().sum() > 0
    assert toy_net.convs[1].grad is not None  # depth-2 subnets reached the second block


def test_distillation_term_is_used(toy_space: ToySpace) -> None:
    images, labels = _batch()
    spec = _spec(toy_space)
    grads = {}
    for weight in (0.0, 1.0):
        net = toy_space.build_supernet()
        net.dropout.p = 0.0
        result = train_step(net, net, images, labels, spec, StepOptions(distill_weight=weight))
        grads[weight] = net.stem.grad.clone()
        if weight == 0.0:
            assert result.kd_loss == 0.0
        else:
            assert result.kd_loss > 0.0
    assert not torch.allclose(grads[0.0], grads[1.0])


def test_teacher_targets_come_from_the_largest_subnet(toy_space: ToySpace) -> None:
    net = toy_space.build_supernet()
    net.dropout.p = 0.0
    images, labels = _batch()
    spec = sandwich_subnets(toy_space.largest(), toy_space.largest(), [])
    result = train_step(net, net, images, labels, spec, StepOptions(distill_weight=1.0))
    # a student identical to its teacher: KD equals the entropy of the teacher's prediction
    # (train mode: batch statistics, as during the step; no optimizer step happened)
    net.set_active(toy_space.largest())
    with torch.no_grad():
        probs = torch.softmax(net(images), 1)
    entropy = float(-(probs * probs.log()).sum(1).mean())
    assert result.kd_loss > 0
    assert abs(result.kd_loss - entropy) < 1e-5


def test_soft_cross_entropy_and_resize() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    onehot = torch.eye(2)
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(2))
    assert torch.allclose(soft_cross_entropy(logits, onehot), expected)
    images = torch.randn(2, 3, 16, 16)
    assert resize(images, 12).shape == (2, 3, 12, 12)
    assert resize(images, 16) is images


def test_spos_steps_train_one_random_subnet_on_the_labels(toy_space: ToySpace) -> None:
    import numpy as np

    from nas.train.config import PhaseConfig
    from nas.train.progressive import step_spec
    from nas.train.samplers import make_sampler

    sampler = make_sampler("uniform", toy_space, resolutions=(16,), seed=0)
    phase = PhaseConfig("spos", 1, ("*",))
    specs = [step_spec(phase, sampler, np.random.default_rng(s), num_random=3, teacher=None)
             for s in range(8)]
    assert all(len(spec.subnets) == 1 and spec.subnets[0][0] == "random" for spec in specs)
    assert len({str(spec.subnets[0][1]) for spec in specs}) > 1  # drawn, not fixed
    net = toy_space.build_supernet()
    images, labels = _batch()
    result = train_step(net, net, images, labels, specs[0], StepOptions(distill_weight=1.0))
    assert result.kd_loss == 0.0 and result.seen == {"random": 8}
