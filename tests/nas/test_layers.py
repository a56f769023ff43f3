from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.layers.dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSqueezeExcite,
)
from search_spaces.ofa_mbv3.layout import se_width


def ofa_style_kernel(layer: DynamicDepthwiseConv2d, channels: int, kernel: int) -> torch.Tensor:
    """OFA's sequential recipe: crop the current kernel, apply F.linear(w, M), repeat."""
    current = layer.weight[:channels]
    sizes = layer.kernel_sizes
    for big, small in zip(sizes[:0:-1], sizes[-2::-1], strict=True):
        if big <= kernel:
            break
        start = (big - small) // 2
        crop = current[:, :, start : start + small, start : start + small].reshape(channels, -1)
        current = F.linear(crop, layer.transforms[f"{big}to{small}"]).view(
            channels, 1, small, small
        )
    return current


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_folded_kernel_transform_equals_sequential_chain(kernel: int) -> None:
    torch.manual_seed(0)
    layer = DynamicDepthwiseConv2d(12, [3, 5, 7])
    with torch.no_grad():
        for matrix in layer.transforms.values():
            matrix.add_(0.3 * torch.randn_like(matrix))
    got = layer.active_weight(8, kernel)
    torch.testing.assert_close(got, ofa_style_kernel(layer, 8, kernel))
    x = torch.randn(2, 8, 9, 9)
    torch.testing.assert_close(layer(x, kernel), layer.export(8, kernel)(x))


def test_identity_transforms_give_centre_crops() -> None:
    layer = DynamicDepthwiseConv2d(4, [3, 5, 7])
    torch.testing.assert_close(layer.active_weight(4, 3), layer.weight[:, :, 2:5, 2:5])


def test_kernel_transforms_receive_gradients() -> None:
    layer = DynamicDepthwiseConv2d(4, [3, 5, 7])
    layer(torch.randn(1, 4, 6, 6), 3).sum().backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in layer.transforms.values())


def test_dynamic_conv_and_linear_slice_the_first_channels() -> None:
    torch.manual_seed(0)
    conv = DynamicConv2d(8, 16, kernel_size=3, stride=2)
    x = torch.randn(2, 5, 8, 8)
    torch.testing.assert_close(conv(x, 6), conv.export(5, 6)(x))
    assert conv(x, 6).shape == (2, 6, 4, 4)
    linear = DynamicLinear(8, 3)
    v = torch.randn(2, 5)
    torch.testing.assert_close(linear(v), linear.export(5)(v))


def test_dynamic_bn_matches_plain_bn_on_a_slice() -> None:
    torch.manual_seed(0)
    dynamic = DynamicBatchNorm2d(8)
    with torch.no_grad():
        dynamic.weight.uniform_(0.5, 1.5)
        dynamic.bias.normal_()
    plain = dynamic.export(5)
    x = torch.randn(4, 5, 3, 3)
    torch.testing.assert_close(dynamic.train()(x), plain.train()(x))
    torch.testing.assert_close(dynamic.running_mean[:5], plain.running_mean)
    torch.testing.assert_close(dynamic.running_var[:5], plain.running_var)
    assert torch.all(dynamic.running_mean[5:] == 0)  # untouched slice
    torch.testing.assert_close(dynamic.eval()(x), plain.eval()(x))


def test_dynamic_bn_cumulative_average_with_momentum_none() -> None:
    dynamic = DynamicBatchNorm2d(6, momentum=None)
    batches = [torch.randn(8, 4, 2, 2) + i for i in range(3)]
    for batch in batches:
        dynamic.train()(batch)
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    torch.testing.assert_close(dynamic.running_mean[:4], expected)


def test_dynamic_squeeze_excite_matches_export() -> None:
    torch.manual_seed(0)
    se = DynamicSqueezeExcite(48, se_width)
    x = torch.randn(2, 32, 4, 4)
    exported = se.export(32)
    assert exported.reduce.out_features == se_width(32) == 8
    torch.testing.assert_close(se(x), exported(x))
    assert isinstance(exported.reduce, nn.Linear)


@pytest.mark.parametrize(("side", "stride"), [(1, 1), (2, 1), (3, 2), (2, 2)])
def test_small_map_kernel_crop_is_exact(side: int, stride: int) -> None:
    torch.manual_seed(0)
    layer = DynamicDepthwiseConv2d(6, [3, 5, 7], stride=stride)
    x = torch.randn(2, 6, side, side, requires_grad=True)
    full = F.conv2d(x, layer.weight, None, stride, 3, 1, 6)
    cropped = layer(x, 7)
    torch.testing.assert_close(cropped, full)
    (grad_full,) = torch.autograd.grad(full.square().sum(), layer.weight)
    (grad_crop,) = torch.autograd.grad(cropped.square().sum(), layer.weight)
    torch.testing.assert_close(grad_crop, grad_full)


def test_fuse_conv_bn_keeps_outputs() -> None:
    from nas.layers.fuse import fuse_conv_bn
    from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space
    from search_spaces.ofa_resnet50.space import OFAResNet50Space

    for space in (OFAMobileNetV3Space.tiny(), OFAResNet50Space.tiny()):
        torch.manual_seed(0)
        subnet = space.build_supernet().extract_subnet(space.smallest())
        for module in subnet.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        subnet.eval()
        x = torch.randn(2, 3, 16, 16)
        with torch.no_grad():
            expected = subnet(x)
            fused = fuse_conv_bn(subnet)
            got = fused(x)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
