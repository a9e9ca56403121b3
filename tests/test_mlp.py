import pytest
import torch

from dendnotes.mlp import ACTIVATIONS, MLP, activation_derivative, activation_function


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_autograd(name):
    a = torch.linspace(-3, 3, 41, dtype=torch.float64).requires_grad_()
    (grad,) = torch.autograd.grad(activation_function(name, a).sum(), a)
    assert torch.allclose(activation_derivative(name, a.detach()), grad)


def test_unknown_activation_and_loss_are_rejected():
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        MLP([2, 3], activation="softplus")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        MLP([2, 3], loss="hinge")
    with pytest.raises(ValueError, match="unknown activation"):
        activation_function("elu", torch.zeros(1))
    with pytest.raises(ValueError, match="unknown activation"):
        activation_derivative("elu", torch.zeros(1))


@pytest.mark.parametrize("sizes", [[3], [3, 0], [3, 2.5]])
def test_bad_sizes_are_rejected(sizes):
    with pytest.raises(ValueError, match="sizes"):
        MLP(sizes)


def test_shapes_init_range_and_seed():
    net = MLP([4, 6, 2], init_range=0.01, seed=3)
    assert [tuple(w.shape) for w in net.weights] == [(6, 4), (2, 6)]
    assert all(float(w.detach().abs().max()) <= 0.01 for w in net.weights)
    assert all(float(b.detach().abs().max()) == 0 for b in net.biases)
    again = MLP([4, 6, 2], init_range=0.01, seed=3)
    other = MLP([4, 6, 2], init_range=0.01, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters()))
    assert not torch.equal(net.weights[0], other.weights[0])
    default = MLP([100, 5])
    assert float(default.weights[0].detach().abs().max()) <= 0.1


def test_forward_cache_and_output():
    net = MLP([4, 6, 2], activation="relu", bias=False)
    x = torch.rand(5, 4)
    cache = net.forward_with_cache(x)
    assert len(cache.pre) == 2 and len(cache.post) == 3
    assert torch.equal(cache.post[1], torch.relu(cache.pre[0]))
    assert torch.equal(cache.output, net(x))
    assert not net.has_bias and list(net.parameters()) == list(net.weights)


def test_pre_noise_shifts_preactivations():
    net = MLP([3, 4, 2])
    x = torch.rand(2, 3)
    noise = [torch.ones(2, 4), torch.zeros(2, 2)]
    assert torch.allclose(net.forward_with_cache(x, noise).pre[0], net.forward_with_cache(x).pre[0] + 1)
    with pytest.raises(ValueError, match="one tensor per layer"):
        net.forward_with_cache(x, noise[:1])


def test_wrong_input_shape_names_expected_shape():
    net = MLP([784, 10])
    with pytest.raises(ValueError, match=r"\(batch, 784\).*\(3, 28, 28\)"):
        net(torch.zeros(3, 28, 28))


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_output_error_is_gradient_of_mean_loss(loss, small_batch):
    x, y = small_batch
    net = MLP([5, 3], loss=loss, dtype=torch.float64)
    out = net(x).detach().requires_grad_()
    (grad,) = torch.autograd.grad(net.loss(out, y), out)
    assert torch.allclose(net.output_error(out.detach(), y), grad)


def test_loss_values_and_target_checks():
    net = MLP([2, 2], loss="mse")
    out = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert torch.allclose(net.loss(out, torch.tensor([0, 1]), reduction="none"), torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="shape"):
        net.loss(out, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reduction"):
        net.loss(out, torch.tensor([0, 1]), reduction="sum")
    ce = MLP([2, 2])
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        ce.loss(out, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="int64 class indices"):
        ce.loss(out, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="2 outputs but 3 targets"):
        ce.loss(out, torch.tensor([0, 1, 1]))


def test_updates_from_deltas_order_and_values():
    net = MLP([2, 3, 1])
    cache = net.forward_with_cache(torch.ones(4, 2))
    deltas = [torch.ones(4, 3), torch.full((4, 1), 2.0)]
    dw1, dw2, db1, db2 = net.updates_from_deltas(cache, deltas)
    assert torch.allclose(dw1, torch.full((3, 2), 4.0))
    assert torch.allclose(dw2, 2 * cache.post[1].sum(0, keepdim=True))
    assert torch.allclose(db1, torch.full((3,), 4.0)) and torch.allclose(db2, torch.tensor([8.0]))
