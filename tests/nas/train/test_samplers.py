"""Subnet samplers: determinism, restriction to unlocked keys, coverage of MACs bins."""

from __future__ import annotations

import numpy as np
from train_toy import ToySpace

from nas.train.samplers import ComplexitySampler, UniformSampler, make_sampler, restrict


def _space() -> ToySpace:
    return ToySpace(num_classes=4, resolutions=[8, 12, 16], image_size=16)


def test_uniform_is_deterministic_given_the_generator() -> None:
    sampler = UniformSampler(_space(), resolutions=(8, 12, 16), seed=0)
    a = [sampler.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [sampler.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    assert sampler.largest()["resolution"] == 16 and sampler.smallest()["resolution"] == 8


def test_restrict_keeps_locked_keys_at_the_largest_value() -> None:
    space = _space()
    sampler = UniformSampler(space, resolutions=(8, 12, 16), seed=0)
    rng = np.random.default_rng(0)
    draws = [sampler.sample(rng, unlock=("kernel_size",)) for _ in range(40)]
    assert {d["kernel_size"] for d in draws} == {3, 5}
    assert all(d["width"] == 8 and d["depth"] == 2 and d["resolution"] == 16 for d in draws)
    assert restrict({"a": 1, "b": 2}, {"a": 9, "b": 9}, ("*",)) == {"a": 1, "b": 2}


def _bin_histogram(sampler: ComplexitySampler, draws: list[dict]) -> np.ndarray:
    counts = np.zeros(sampler.bins)
    for arch in draws:
        counts[sampler.bin_of(sampler.macs(arch))] += 1
    return counts / len(draws)


def test_complexity_sampler_covers_macs_bins_evenly() -> None:
    space = _space()
    complexity = ComplexitySampler(space, resolutions=(8, 12, 16), seed=0, bins=4)
    uniform = UniformSampler(space, resolutions=(8, 12, 16), seed=0)
    rng = np.random.default_rng(0)
    by_complexity = _bin_histogram(complexity, [complexity.sample(rng) for _ in range(400)])
    by_uniform = _bin_histogram(complexity, [uniform.sample(rng) for _ in range(400)])
    reachable = by_complexity > 0
    assert reachable.sum() == 4  # every bin is drawn
    # the complexity sampler is close to flat over bins, uniform sampling is not
    assert by_complexity.max() - by_complexity.min() < 0.1
    assert by_uniform.max() - by_uniform.min() > by_complexity.max() - by_complexity.min()
    assert sum(complexity.state_dict()["counts"]) == 400


def test_sampler_state_round_trip() -> None:
    space = _space()
    sampler = make_sampler("complexity", space, resolutions=(8, 16), seed=1, bins=3)
    sampler.sample(np.random.default_rng(0))
    state = sampler.state_dict()
    other = make_sampler("complexity", space, resolutions=(8, 16), seed=1, bins=3)
    other.load_state_dict(state)
    assert other.state_dict() == state
