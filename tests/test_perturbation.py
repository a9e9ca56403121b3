import pytest
import torch

from dendnotes.backprop import backprop_gradients, flatten
from dendnotes.mlp import MLP
from dendnotes.perturbation import (
    NodePerturbation,
    WeightPerturbation,
    estimator_statistics,
    node_perturbation_gradient,
    weight_perturbation_gradient,
)
from dendnotes.training import fit

ESTIMATORS = [weight_perturbation_gradient, node_perturbation_gradient]


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(flatten(a), flatten(b), dim=0))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimators_are_unbiased(estimator, small_batch):
    x, y = small_batch
    net = MLP([5, 4, 3], activation="tanh", dtype=torch.float64, seed=1)
    _, true = backprop_gradients(net, x, y)
    gen = torch.Generator().manual_seed(0)
    loss, mean = estimator(net, x, y, sigma=1e-4, n_samples=4000, generator=gen)
    assert cosine(mean, true) > 0.97
    assert torch.allclose(loss, net.loss(net(x), y))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimators_leave_weights_unchanged_and_are_seeded(estimator, small_batch):
    x, y = small_batch
    net = MLP([5, 4, 3], dtype=torch.float64)
    before = [p.clone() for p in net.parameters()]
    a = estimator(net, x, y, generator=torch.Generator().manual_seed(7))[1]
    b = estimator(net, x, y, generator=torch.Generator().manual_seed(7))[1]
    assert all(torch.allclose(p, q, atol=1e-15) for p, q in zip(before, net.parameters()))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_noise_grows_with_width(small_batch):
    """Both estimators get noisier as the hidden layer widens; for node perturbation the
    hidden layer's own signal-to-noise ratio falls (more units share one loss signal)."""
    x, y = small_batch
    stats = {"wp": [], "np": [], "np_hidden": []}
    for width in (2, 16, 128):
        net = MLP([5, width, 3], activation="tanh", dtype=torch.float64, seed=0)
        _, true = backprop_gradients(net, x, y)
        gen = torch.Generator().manual_seed(1)
        for key, est in zip(("wp", "np"), ESTIMATORS):
            samples = [est(net, x, y, sigma=1e-4, generator=gen)[1] for _ in range(100)]
            stats[key].append(estimator_statistics(samples, true))
        stats["np_hidden"].append(estimator_statistics([s[:1] for s in samples], true[:1]))
    for key in stats:
        variance = [s["variance"] for s in stats[key]]
        assert variance[0] < variance[1] < variance[2], (key, variance)
    for key in ("wp", "np_hidden"):
        snr = [s["snr"] for s in stats[key]]
        assert snr[0] > snr[1] > snr[2], (key, snr)
    assert stats["np"][-1]["snr"] > 5 * stats["wp"][-1]["snr"]


def test_weight_perturbation_snr_matches_theory(small_batch):
    # For Gaussian noise, E||xi xi^T g - g||^2 = (P + 1)||g||^2, so SNR = 1/(P + 1).
    x, y = small_batch
    net = MLP([5, 4, 3], dtype=torch.float64)
    n_params = sum(p.numel() for p in net.parameters())
    _, true = backprop_gradients(net, x, y)
    gen = torch.Generator().manual_seed(2)
    samples = [weight_perturbation_gradient(net, x, y, sigma=1e-5, generator=gen)[1] for _ in range(2000)]
    assert estimator_statistics(samples, true)["snr"] == pytest.approx(1 / (n_params + 1), rel=0.15)


def test_estimator_statistics_on_exact_samples():
    g = [torch.tensor([1.0, 0.0])]
    stats = estimator_statistics([[torch.tensor([2.0, 0.0])], [torch.tensor([0.0, 0.0])]], g)
    assert stats["cosine"] == pytest.approx(0.5)  # cosines 1 and 0 (zero vector)
    assert stats["variance"] == pytest.approx(1.0)
    assert stats["snr"] == pytest.approx(1.0)
    assert stats["bias"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least two"):
        estimator_statistics([g], g)


@pytest.mark.parametrize("kwargs", [{"sigma": 0.0}, {"sigma": -1.0}, {"n_samples": 0}])
def test_bad_perturbation_arguments(kwargs, small_batch):
    x, y = small_batch
    net = MLP([5, 3], dtype=torch.float64)
    with pytest.raises(ValueError):
        node_perturbation_gradient(net, x, y, **kwargs)
    with pytest.raises(ValueError):
        WeightPerturbation(net, **kwargs)


@pytest.mark.parametrize("rule_class", [NodePerturbation, WeightPerturbation])
def test_perturbation_rules_learn_xor(rule_class, xor_data):
    net = MLP([2, 8, 2], activation="tanh", seed=0)
    history = fit(rule_class(net, sigma=1e-2, seed=0), xor_data, epochs=800, batch_size=4, lr=0.5, progress=False)
    assert history.final("train_accuracy") == 1.0
