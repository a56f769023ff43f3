from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.data import DatasetSplits, Split
from nas.errors import ConfigError, DatasetError
from nas.supernet.bn import recalibrate_bn
from nas.supernet.evaluate import evaluate_subnet, resize_to
from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space


def tiny_splits(n: int = 24, size: int = 32, classes: int = 10) -> DatasetSplits:
    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> Split:
        images = torch.randint(
            0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator
        )
        return Split(images=images, labels=torch.arange(count) % classes)

    return DatasetSplits(
        name="tiny",
        train=split(n),
        val=split(n // 2),
        test=split(n // 2),
        num_classes=classes,
        channels=3,
        image_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        hflip=True,
    )


@pytest.fixture(scope="module")
def net() -> Any:
    torch.manual_seed(0)
    return OFAMobileNetV3Space.tiny().build_supernet()


def test_recalibrated_stats_are_the_exact_batch_averages() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.3)).eval()
    batches = [torch.randn(5, 3, 4, 4) for _ in range(4)]
    recalibrate_bn(model, iter(batches), num_batches=3)
    assert not model.training and model[1].momentum == 0.3
    with torch.no_grad():
        means = torch.stack([model[0](b).mean(dim=(0, 2, 3)) for b in batches[:3]]).mean(0)
    torch.testing.assert_close(model[1].running_mean, means)


def test_recalibration_on_supernet_matches_extracted_subnet(net: Any) -> None:
    space = net.space
    arch = space.sample(np.random.default_rng(0))
    batches = [torch.randn(4, 3, 16, 16) for _ in range(2)]
    subnet = net.extract_subnet(arch)
    recalibrate_bn(subnet, batches, num_batches=2)
    net.set_active(arch)
    recalibrate_bn(net, batches, num_batches=2)
    net.eval()
    subnet.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x), subnet(x), rtol=1e-4, atol=1e-5)


def test_recalibration_needs_a_batch() -> None:
    with pytest.raises(DatasetError):
        recalibrate_bn(nn.BatchNorm2d(2), [], num_batches=2)


def test_evaluate_subnet_leaves_supernet_stats_alone(net: Any) -> None:
    splits = tiny_splits()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    arch = {**net.space.smallest(), "resolution": 16}  # evaluated at 16 px from 32 px images
    metrics = evaluate_subnet(net, arch, splits, calibration_batches=2, batch_size=8)
    assert metrics["n"] == 12 and 0.0 <= metrics["top1"] <= 100.0 and metrics["loss"] > 0
    for key, value in net.state_dict().items():
        if "running" in key:
            assert torch.equal(value, before[key])
    again = evaluate_subnet(net, arch, splits, calibration_batches=2, batch_size=8)
    assert again == metrics
    with pytest.raises(ConfigError, match="split"):
        evaluate_subnet(net, arch, splits, split="holdout")


def test_resize_to() -> None:
    x = torch.randn(2, 3, 32, 32)
    assert resize_to(x, 32) is x and resize_to(x, None) is x
    assert resize_to(x, 16).shape == (2, 3, 16, 16)
