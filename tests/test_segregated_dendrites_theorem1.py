"""Theorem 1 of Guerguiev, Lillicrap & Richards 2017: its Jacobians, its eigenvalue and the recorder."""

import numpy as np
import pytest
import torch

from dendnotes.segregated_dendrites import (
    SegregatedDendrites,
    SegregatedNetwork,
    Theorem1Record,
    theorem1_eigenvalue,
    theorem1_jacobians,
)


def tiny_network(seed=0, sizes=(6, 5, 3)):
    return SegregatedNetwork(list(sizes), seed=seed, dtype=torch.float64)


def inputs(n=4, n_in=6, seed=0):
    return torch.rand(n, n_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def theorem_maps(net):
    """The theorem's beta(x) = phi_max sigma(k_d (W^1 x + b^1)) and gamma(x) = sigma(Y x), from the paper."""
    p = net.params

    def beta(x):
        return p.phi_max * torch.sigmoid(p.k_d * (net.weights[1] @ x + net.biases[1]))

    def gamma(x):
        return torch.sigmoid(net.feedback[0] @ x)

    return beta, gamma


def test_jacobians_match_autograd():
    """J_beta at the hidden forward rates and J_gamma at the output forward rates, against autograd."""
    net = tiny_network()
    forward = net.steady_phase(inputs())  # rate mode, g_a = 0: V^1_f = k_d (W^1 phi^0_f + b^1) exactly
    beta, gamma = theorem_maps(net)
    j_beta, j_gamma = theorem1_jacobians(net, forward)
    assert j_beta.shape == (4, 3, 5) and j_gamma.shape == (4, 5, 3)
    for n, hidden in enumerate(forward.inputs[1]):
        torch.testing.assert_close(beta(hidden), forward.output_rate[n])
        torch.testing.assert_close(j_beta[n], torch.autograd.functional.jacobian(beta, hidden))
        torch.testing.assert_close(j_gamma[n], torch.autograd.functional.jacobian(gamma, beta(hidden)))


@torch.no_grad()
def test_eigenvalue_bounds_the_theorem_step():
    """The theorem's hidden target phi^0* = phi^0_f + gamma(phi^1*) - gamma(phi^1_f) leaves the output error
    ||phi^1* - beta(phi^0*)||^2 = ||(I - J_beta J_gamma) e||^2 + o(||e||^2): at most mu ||e||^2, and equal to it
    along mu's eigenvector."""
    net = tiny_network(seed=1)
    forward = net.steady_phase(inputs(n=1, seed=1))
    beta, gamma = theorem_maps(net)
    j_beta, j_gamma = theorem1_jacobians(net, forward)
    product = (j_beta @ j_gamma)[0]
    mu = float(theorem1_eigenvalue(product))
    residual = torch.eye(3, dtype=torch.float64) - product
    direction = torch.linalg.eigh(residual.T @ residual).eigenvectors[:, -1]
    hidden, output = forward.inputs[1][0], forward.output_rate[0]
    generator = torch.Generator().manual_seed(0)
    for e in (direction, torch.randn(3, generator=generator, dtype=torch.float64)):
        e = 1e-5 * e / e.norm()
        target = hidden + gamma(output + e) - gamma(output)
        ratio = float(((output + e - beta(target)) ** 2).sum() / (e**2).sum())
        assert ratio <= mu * (1 + 1e-3)
    assert ratio == pytest.approx(float((residual @ e).norm() ** 2 / e.norm() ** 2), rel=1e-3)
    e = 1e-5 * direction
    target = hidden + gamma(output + e) - gamma(output)
    assert float(((output + e - beta(target)) ** 2).sum() / (e**2).sum()) == pytest.approx(mu, rel=1e-3)


def test_eigenvalue_is_the_largest_eigenvalue():
    products = torch.randn(5, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mu = theorem1_eigenvalue(products)
    for m, product in zip(mu, products.numpy()):
        residual = np.eye(4) - product
        assert float(m) == pytest.approx(np.linalg.eigvals(residual.T @ residual).real.max(), rel=1e-10)
    assert float(theorem1_eigenvalue(torch.eye(4))) == pytest.approx(0.0, abs=1e-6)  # J_beta J_gamma = I


def test_recorder_uses_the_weights_of_each_forward_phase():
    """Per-example mu from the W^1 before each update; the window's mean Jacobians over the last examples."""
    net = tiny_network(seed=2)
    rule = SegregatedDendrites(net, mode="rate")
    record = Theorem1Record(rule, window=3)
    x, y = inputs(n=7, seed=2), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    expected, jacobians = [], []
    for k in range(len(x)):
        before = net.weights[1].detach().clone()
        rule.train_step(x[k:k + 1], y[k:k + 1], lr=1.0)
        record.on_batch_end(rule, y[k:k + 1])
        assert not torch.equal(before, net.weights[1])
        j_beta, j_gamma = theorem1_jacobians(net, rule.last_phases[0], before)
        jacobians.append((j_beta[0], j_gamma[0]))
        expected.append(float(theorem1_eigenvalue(j_beta @ j_gamma)[0]))
    np.testing.assert_allclose(record.per_example, expected, rtol=1e-9)
    last = jacobians[-3:]
    mean_beta, mean_gamma = (torch.stack(j).mean(0) for j in zip(*last))
    torch.testing.assert_close(record.window_product, mean_beta @ mean_gamma)
    assert record.product_of_means[-1] == pytest.approx(float(theorem1_eigenvalue(mean_beta @ mean_gamma)), rel=1e-9)
    mean_product = torch.stack([b @ g for b, g in last]).mean(0)
    assert record.mean_of_products[-1] == pytest.approx(float(theorem1_eigenvalue(mean_product)), rel=1e-9)
    assert record.per_example[0] == record.product_of_means[0] == pytest.approx(record.mean_of_products[0])
    assert len(record.product_of_means) == len(record.mean_of_products) == len(x)


def test_recorder_takes_batches():
    rule = SegregatedDendrites(tiny_network(seed=3), mode="rate")
    record = Theorem1Record(rule)
    rule.train_step(inputs(n=4, seed=3), torch.tensor([0, 1, 2, 0]), lr=1.0)
    record.on_batch_end(rule, torch.tensor([0, 1, 2, 0]))
    assert len(record.per_example) == len(record.product_of_means) == 4


def test_bad_input_is_a_clear_error():
    deep = SegregatedNetwork([6, 5, 4, 3], seed=0, dtype=torch.float64)
    with pytest.raises(ValueError, match="one hidden layer; this network has 2"):
        theorem1_jacobians(deep, deep.steady_phase(inputs()))
    with pytest.raises(ValueError, match="one hidden layer"):
        Theorem1Record(SegregatedDendrites(deep, mode="rate"))
    net = tiny_network()
    forward = net.steady_phase(inputs())
    with pytest.raises(ValueError, match="square matrix"):
        theorem1_eigenvalue(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="output_weights must have shape"):
        theorem1_jacobians(net, forward, torch.zeros(5, 3))
    forward.soma[-1] = forward.soma[-1][:, :2]
    with pytest.raises(ValueError, match=r"forward.soma\[-1\] must have shape"):
        theorem1_jacobians(net, forward)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        Theorem1Record(SegregatedDendrites(tiny_network(), mode="rate"), window=0)
