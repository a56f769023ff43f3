"""Conformance suite run on every registered search space (timm / Optuna style).

Each space is built with its `tiny()` constructor when it has one, so the torch checks stay small.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.arch import arch_id, canonical_json
from nas.errors import InvalidArchError
from search_spaces import SPACES, SearchSpace, builtin_space_names

# built-in spaces only: other test modules register toy spaces that are not meant to conform
NAMES = builtin_space_names()


def tiny_space(name: str) -> SearchSpace:
    cls: Any = SPACES.get(name)
    return cls.tiny() if hasattr(cls, "tiny") else cls()


def some_archs(space: SearchSpace, n: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(n))]


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Conv and linear multiply-accumulates at batch 1, counted by forward hooks."""
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        per_output = output.numel() // output.shape[0]
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += per_output * module.in_channels // module.groups * k
        else:
            assert isinstance(module, nn.Linear)
            total += per_output * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model(x[:1])
    for handle in handles:
        handle.remove()
    return total


def supernet_of(space: SearchSpace) -> Any:
    """The space's supernet: every built-in space has one (nb201 too, since issue 13)."""
    return space.build_supernet()


def input_for(space: SearchSpace, net: Any, arch: Any) -> torch.Tensor:
    side = net.input_resolution(arch) or 32
    channels = space.spec()["kwargs"].get("in_channels", 3)
    return torch.randn(2, channels, side, side, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", NAMES)
def test_spec_rebuilds_identical_space(name: str) -> None:
    from search_spaces import space_from_spec

    space = tiny_space(name)
    spec = json.loads(json.dumps(space.spec()))
    assert space_from_spec(spec).spec() == space.spec()


@pytest.mark.parametrize("name", NAMES)
def test_encode_decode_roundtrip(name: str) -> None:
    space = tiny_space(name)
    for arch in some_archs(space):
        vector = space.encode(arch)
        assert vector.shape == (space.dim,) and vector.dtype == np.float32
        assert space.decode(vector) == arch


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_valid_canonical_and_seeded(name: str) -> None:
    space = tiny_space(name)
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    for arch in some_archs(space, 8):
        space.validate(arch)
        assert space.normalize(arch) == arch
        assert space.normalize(json.loads(canonical_json(arch))) == arch


@pytest.mark.parametrize("name", NAMES)
def test_mutate_and_crossover_stay_valid(name: str) -> None:
    space = tiny_space(name)
    rng = np.random.default_rng(1)
    archs = some_archs(space, 6)
    changed = 0
    for a, b in zip(archs, archs[1:], strict=False):
        child = space.mutate(a, rng, prob=0.3)
        space.validate(child)
        assert space.normalize(child) == child
        changed += child != a
        mixed = space.crossover(a, b, rng)
        space.validate(mixed)
        assert space.normalize(mixed) == mixed
    assert changed > 0
    assert space.mutate(archs[2], rng, prob=0.0) == archs[2]


@pytest.mark.parametrize("name", NAMES)
def test_validate_rejects_garbage(name: str) -> None:
    space = tiny_space(name)
    with pytest.raises(InvalidArchError):
        space.validate({"no_such_key": 1})
    with pytest.raises(InvalidArchError):
        space.normalize([1, 2, 3])


@pytest.mark.parametrize("name", NAMES)
def test_arch_ids_distinguish_samples(name: str) -> None:
    space = tiny_space(name)
    ids = {arch_id(arch) for arch in some_archs(space, 10)}
    assert len(ids) > 5


@pytest.mark.parametrize("name", NAMES)
def test_complexity_matches_extracted_subnet(name: str) -> None:
    torch.manual_seed(0)
    space = tiny_space(name)
    net = supernet_of(space)
    for arch in some_archs(space, 2):
        subnet = net.extract_subnet(arch).eval()
        counted = space.complexity(arch)
        assert counted["params"] == sum(p.numel() for p in subnet.parameters())
        assert counted["macs"] == count_macs(subnet, input_for(space, net, arch))


@pytest.mark.parametrize("name", NAMES)
def test_extract_matches_active(name: str) -> None:
    torch.manual_seed(0)
    space = tiny_space(name)
    net = supernet_of(space)
    for arch in some_archs(space, 2)[1:]:
        x = input_for(space, net, arch)
        net.set_active(arch)
        assert net.active() == space.normalize(arch)
        net.eval()
        with torch.no_grad():
            expected = net(x)
            subnet = net.extract_subnet(arch).eval()
            got = subnet(x)
        assert not any(type(m).__name__.startswith("Dynamic") for m in subnet.modules())
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_extracted_subnet_exports_to_torchscript_and_onnx(name: str, tmp_path: Any) -> None:
    import warnings

    import onnxruntime as ort

    space = tiny_space(name)
    net = supernet_of(space)
    arch = space.smallest()
    subnet = net.extract_subnet(arch).eval()
    x = input_for(space, net, arch)
    with torch.no_grad():
        expected = subnet(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit / the legacy ONNX exporter are deprecated
        scripted = torch.jit.script(subnet)
        torch.onnx.export(
            subnet,
            (x,),
            str(tmp_path / "m.onnx"),
            dynamo=False,
            input_names=["x"],
            opset_version=17,
        )
    np.testing.assert_allclose(scripted(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_suggest_gives_valid_archs(name: str) -> None:
    import optuna

    space = tiny_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        arch = space.suggest(trial)
        space.validate(arch)
        assert space.normalize(arch) == arch
        study.tell(trial, 0.0)
