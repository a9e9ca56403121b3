import pytest
import torch

from dendnotes.backprop import (
    Backprop,
    autograd_gradients,
    backprop_deltas,
    backprop_gradients,
    flatten,
    propagate_deltas,
    relative_error,
)
from dendnotes.mlp import MLP
from dendnotes.training import fit


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_backprop_matches_autograd(activation, loss, small_batch):
    x, y = small_batch
    net = MLP([5, 7, 6, 3], activation=activation, loss=loss, dtype=torch.float64, seed=2)
    loss_bp, grads_bp = backprop_gradients(net, x, y)
    loss_ag, grads_ag = autograd_gradients(net, x, y)
    assert torch.allclose(loss_bp, loss_ag)
    assert relative_error(grads_bp, grads_ag) < 1e-10


def test_backprop_matches_finite_differences(small_batch):
    x, y = small_batch
    net = MLP([5, 4, 3], activation="tanh", dtype=torch.float64, seed=5)
    _, grads = backprop_gradients(net, x, y)
    eps = 1e-6
    w = net.weights[0]
    for i, j in [(0, 0), (2, 3), (3, 1)]:
        with torch.no_grad():
            w[i, j] += eps
            up = net.loss(net(x), y)
            w[i, j] -= 2 * eps
            down = net.loss(net(x), y)
            w[i, j] += eps
        assert abs(float((up - down) / (2 * eps)) - float(grads[0][i, j])) < 1e-8


def test_propagate_deltas_with_forward_weights_is_backprop(small_batch):
    x, y = small_batch
    net = MLP([5, 4, 3], dtype=torch.float64)
    cache = net.forward_with_cache(x)
    e = net.output_error(cache.output, y)
    zero = [torch.zeros_like(w) for w in net.weights]
    assert all(torch.equal(a, b) for a, b in zip(backprop_deltas(net, cache, e), propagate_deltas(net, cache, e, list(net.weights))))
    assert float(propagate_deltas(net, cache, e, zero)[0].detach().abs().sum()) == 0


def test_relative_error_and_flatten():
    a = [torch.ones(2, 2), torch.zeros(3)]
    assert flatten(a).shape == (7,)
    assert relative_error(a, a) == 0
    assert abs(relative_error([torch.tensor([1.0])], [torch.tensor([2.0])]) - 0.5) < 1e-12


def test_backprop_rule_learns_xor(xor_data):
    net = MLP([2, 8, 2], activation="tanh", seed=0)
    history = fit(Backprop(net), xor_data, epochs=300, batch_size=4, lr=0.5, progress=False)
    assert history.final("train_accuracy") == 1.0
    assert history.final("train_loss") < 0.1 * history["train_loss"][0]
