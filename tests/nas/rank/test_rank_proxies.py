"""Zero-cost proxies against values computed by hand (numpy, closed forms, explicit Hessians)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.errors import ConfigError, NasError
from nas.rank.proxies import PROXIES, ProxyInput, compute_proxies

DATA_PROXIES = ("synflow", "snip", "grasp", "jacov", "naswot")


def _mlp(seed: int = 0, *, batchnorm: bool = False) -> nn.Sequential:
    """x -> W2 relu(W1 x) without biases: synflow and snip have closed forms on it."""
    torch.manual_seed(seed)  # the test's own model; the proxies never seed globally
    middle = [nn.BatchNorm1d(5)] if batchnorm else []
    return nn.Sequential(
        nn.Linear(4, 5, bias=False), *middle, nn.ReLU(), nn.Linear(5, 3, bias=False)
    )


def _batch(seed: int = 0, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def _weights(model: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    first, last = model[0], model[-1]
    return first.weight.detach().double().numpy(), last.weight.detach().double().numpy()


def _gradients_by_hand(model: nn.Sequential, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """d cross-entropy / d (W1, W2) of the two-layer net, by the chain rule in numpy."""
    w1, w2 = _weights(model)
    hidden = x @ w1.T
    active = np.maximum(hidden, 0)
    z = active @ w2.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(x)
    dhidden = (dz @ w2) * (hidden > 0)
    return [dhidden.T @ x, dz.T @ active]


def test_synflow_is_depth_times_the_path_sum_and_ignores_batchnorm() -> None:
    model = _mlp(1)
    w1, w2 = _weights(model)
    paths = np.ones(3) @ np.abs(w2) @ np.abs(w1) @ np.ones(4)  # R with |theta| and input 1
    # each layer's sum |theta * dR/dtheta| equals R for a linear path network
    subnet = ProxyInput(model, [_batch()])
    assert PROXIES.get("synflow")(subnet) == pytest.approx(2 * paths, rel=1e-12)
    with_bn = _mlp(1, batchnorm=True)
    assert PROXIES.get("synflow")(ProxyInput(with_bn, [_batch()])) == pytest.approx(2 * paths)


def test_synflow_runs_in_double_precision_past_float32_range() -> None:
    depth, width = 14, 64
    model = nn.Sequential(*(nn.Linear(width, width, bias=False) for _ in range(depth)))
    for layer in model:
        nn.init.constant_(layer.weight, 10.0)
    value = PROXIES.get("synflow")(ProxyInput(model, [(torch.zeros(1, width), torch.zeros(1))]))
    expected = depth * width * (10.0 * width) ** depth  # about 2e42, beyond float32's 3e38
    assert math.isfinite(value) and value == pytest.approx(expected, rel=1e-9)


def test_snip_is_the_sum_of_weight_times_gradient_magnitudes() -> None:
    model = _mlp(2)
    images, labels = _batch(3)
    grads = _gradients_by_hand(model, images.double().numpy(), labels.numpy())
    expected = sum(float(np.abs(w * g).sum()) for w, g in zip(_weights(model), grads, strict=True))
    assert PROXIES.get("snip")(ProxyInput(model, [(images, labels)])) == pytest.approx(expected)
    # the loss is the mean over the batches: the same batch twice changes nothing
    twice = ProxyInput(model, [(images, labels), (images, labels)])
    assert PROXIES.get("snip")(twice) == pytest.approx(expected)


@pytest.mark.parametrize("count", [1, 2])
def test_grasp_is_minus_theta_hessian_gradient_from_an_explicit_hessian(count: int) -> None:
    model = _mlp(4)
    batches = [_batch(5 + b) for b in range(count)]
    w1, w2 = (p.detach().double() for p in model.parameters())
    theta = torch.cat([w1.reshape(-1), w2.reshape(-1)])

    def loss(flat: torch.Tensor) -> torch.Tensor:  # the mean of the batches' losses
        a, b = flat[:20].reshape(5, 4), flat[20:].reshape(3, 5)
        losses = [
            nn.functional.cross_entropy(torch.relu(x.double() @ a.T) @ b.T, y) for x, y in batches
        ]
        return torch.stack(losses).mean()

    hessian = torch.autograd.functional.hessian(loss, theta)
    gradient = torch.autograd.functional.jacobian(loss, theta)
    expected = float(-(theta * (hessian @ gradient)).sum())
    value = PROXIES.get("grasp")(ProxyInput(model, batches))
    assert value == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_grasp_names_operations_without_second_derivatives() -> None:
    # MobileNetV3's squeeze-excite uses hardsigmoid, whose backward torch cannot differentiate
    model = nn.Sequential(nn.Linear(4, 5), nn.Hardsigmoid(), nn.Linear(5, 3))
    with pytest.raises(NasError, match="grasp.*hardsigmoid.*use another proxy"):
        PROXIES.get("grasp")(ProxyInput(model, [_batch()]))


def test_jacov_of_a_linear_map_has_its_closed_form() -> None:
    # every image has the same input gradient W^T 1: the correlations are all 1, so the
    # eigenvalues are n (once) and 0 (n - 1 times)
    model = nn.Sequential(nn.Linear(4, 3))
    n, k = 6, 1e-5
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    value = PROXIES.get("jacov")(ProxyInput(model, [_batch(n=n)]))
    assert value == pytest.approx(expected, rel=1e-6)


def test_jacov_of_a_relu_net_matches_jacobians_by_hand() -> None:
    model = _mlp(7)
    images, labels = _batch(7, n=8)
    w1, w2 = _weights(model)
    active = (images.double().numpy() @ w1.T) > 0
    jacobians = (active * (np.ones(3) @ w2)) @ w1  # d(sum f)/dx per image
    assert jacobians.std(axis=1).min() > 0  # (seeds chosen so that no image is ignored)
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobians)) + 1e-5
    expected = -np.sum(np.log(eigenvalues) + 1 / eigenvalues)
    value = PROXIES.get("jacov")(ProxyInput(model, [(images, labels)]))
    assert value == pytest.approx(expected, rel=1e-5)


def test_jacov_is_minus_infinity_when_the_output_ignores_the_input() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    nn.init.zeros_(model[0].weight)
    assert PROXIES.get("jacov")(ProxyInput(model, [_batch()])) == -math.inf


def test_jacov_is_minus_infinity_when_the_output_never_sees_the_input() -> None:
    # an NB201 cell whose edges into the output are all `none`: the graph never reaches x
    class Blind(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.zeros_like(x))

    assert PROXIES.get("jacov")(ProxyInput(Blind(), [_batch()])) == -math.inf


def test_naswot_of_a_hand_made_code_kernel() -> None:
    # W1 = I: the ReLU sees the images themselves. Codes [1, 1] and [1, 0] agree on one unit,
    # so K = [[2, 1], [1, 2]] and log det K = log 3.
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    images = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    value = PROXIES.get("naswot")(ProxyInput(model, [(images, torch.zeros(2, dtype=torch.long))]))
    assert value == pytest.approx(math.log(3.0))


def test_naswot_counts_hamming_agreements_over_every_relu() -> None:
    model = _mlp(8)
    images, labels = _batch(9, n=5)
    codes = (images.double().numpy() @ _weights(model)[0].T) > 0
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    expected = np.linalg.slogdet(codes.shape[1] - hamming)[1]
    assert PROXIES.get("naswot")(ProxyInput(model, [(images, labels)])) == pytest.approx(expected)


def test_naswot_needs_relu_modules() -> None:
    with pytest.raises(NasError, match="expected nn.ReLU modules"):
        PROXIES.get("naswot")(ProxyInput(nn.Sequential(nn.Linear(4, 3)), [_batch()]))


def test_size_proxies_read_the_space_complexity() -> None:
    subnet = ProxyInput(_mlp(), complexity={"params": 35, "macs": 70})
    scores = compute_proxies(["params", "macs"], subnet)
    assert (scores["params"].value, scores["macs"].value) == (35.0, 70.0)
    with pytest.raises(ConfigError, match="complexity"):
        compute_proxies(["params"], ProxyInput(_mlp()))


def test_data_proxies_need_a_batch() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        compute_proxies(["snip"], ProxyInput(_mlp()))


def test_unknown_proxy_lists_the_registered_names() -> None:
    with pytest.raises(NasError, match="did you mean 'synflow'.*naswot"):
        compute_proxies(["synflo"], ProxyInput(_mlp()))


def _conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def _images(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 8, 8, generator=generator), torch.tensor([0, 1, 2, 0]))]


def test_same_init_seed_same_values_whatever_the_global_seed() -> None:
    def scores(global_seed: int, init_seed: int) -> dict[str, float]:
        torch.manual_seed(global_seed)  # the model's own initialisation differs
        subnet = ProxyInput(_conv_net(), _images(0), init_seed=init_seed)
        return {k: v.value for k, v in compute_proxies(DATA_PROXIES, subnet).items()}

    first = scores(1, 7)
    assert scores(2, 7) == first
    assert scores(1, 8) != first


def test_the_model_and_global_state_are_left_unchanged() -> None:
    model = _conv_net()
    model[1].running_mean.fill_(0.5)
    model[0].weight.grad = torch.full_like(model[0].weight, 3.0)
    model[-1].weight.requires_grad_(False)
    model.eval()
    model[3].train()  # a mixed mode must survive too
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    rng_state = torch.get_rng_state()
    with torch.no_grad():  # proxies that need gradients enable them locally
        scores = compute_proxies(DATA_PROXIES, ProxyInput(model, _images(1), init_seed=3))
    assert all(
        math.isfinite(s.value) and min(s.seconds, s.cpu_seconds) >= 0 for s in scores.values()
    )
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 3.0))
    assert model[2 + 1].training and not model[1].training
    assert [m.training for m in model.modules()] == modes
    assert not model[-1].weight.requires_grad and model[0].bias.grad is None
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.is_grad_enabled()


def test_a_model_returning_a_tuple_is_scored_on_its_first_output() -> None:
    class WithAux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _mlp(3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            return self.body(x), None

    plain = compute_proxies(DATA_PROXIES, ProxyInput(_mlp(3), [_batch()]))
    wrapped = compute_proxies(DATA_PROXIES, ProxyInput(WithAux(), [_batch()]))
    assert {k: v.value for k, v in wrapped.items()} == pytest.approx(
        {k: v.value for k, v in plain.items()}
    )
