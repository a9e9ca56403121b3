import math

import pytest
import torch

from dendnotes.backprop import Backprop, autograd_gradients, backprop_gradients, relative_error
from dendnotes.feedback_alignment import (
    RULES,
    DirectFeedbackAlignment,
    FeedbackAlignment,
    KolenPollack,
    SignSymmetry,
    alignment_recorder,
    angle_between,
    feedback_mismatch,
    linear_network,
    linear_teacher_data,
    make_rule,
    random_feedback,
    run_mnist_comparison,
    update_angles,
    weight_feedback_angles,
)
from dendnotes.mlp import MLP, activation_derivative
from dendnotes.training import LearningRule, fit


def tiny_linear_net():
    """2-2-1 linear network, no biases, squared error; worked through by hand below."""
    net = MLP([2, 2, 1], activation="linear", loss="mse", bias=False, dtype=torch.float64)
    with torch.no_grad():
        net.weights[0].copy_(torch.tensor([[1.0, -1.0], [2.0, 0.0]]))
        net.weights[1].copy_(torch.tensor([[1.0, 3.0]]))
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([[0.0]], dtype=torch.float64)
    return net, x, y


# By hand: h1 = W1 x = (-1, 2), output = W2 h1 = 5, e = output - y = 5, so every rule
# has dW2 = e h1 = (-5, 10); the hidden error delta1 = e * (feedback row) differs.
HAND_DW2 = [[-5.0, 10.0]]
HAND_DW1 = {
    "BP": [[5.0, 10.0], [15.0, 30.0]],  # delta1 = e W2 = (5, 15)
    "FA": [[10.0, 20.0], [-5.0, -10.0]],  # delta1 = e B^T = 5 (2, -1)
    "DFA": [[10.0, 20.0], [-5.0, -10.0]],  # delta1 = e D1 = 5 (2, -1)
    "SS": [[10.0, 20.0], [10.0, 20.0]],  # mean|W2| sign(W2) = (2, 2): delta1 = (10, 10)
    "KP": [[10.0, 20.0], [-5.0, -10.0]],  # as FA; and dB^T = dW2
}


def hand_rule(name, net):
    feedback = [torch.tensor([[2.0, -1.0]], dtype=torch.float64)]
    if name in ("FA", "DFA", "KP"):
        return RULES[name](net, feedback=feedback)
    return RULES[name](net)


@pytest.mark.parametrize("name", list(RULES))
def test_rules_match_hand_computed_updates(name):
    net, x, y = tiny_linear_net()
    loss, updates = hand_rule(name, net).compute_updates(x, y)
    assert float(loss) == pytest.approx(12.5)  # 0.5 * 5^2
    expected = [torch.tensor(HAND_DW1[name]), torch.tensor(HAND_DW2)]
    if name == "KP":
        expected.append(torch.tensor(HAND_DW2))  # the feedback's own update
    assert len(updates) == len(expected)
    for u, e in zip(updates, expected):
        assert torch.allclose(u, e.double(), atol=1e-12), (name, u, e)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_fa_and_dfa_match_written_out_formulas(activation, small_batch):
    x, y = small_batch
    net = MLP([5, 6, 4, 3], activation=activation, dtype=torch.float64, seed=3)
    with torch.no_grad():
        cache = net.forward_with_cache(x)
    e = net.output_error(cache.output, y)
    fprime = [activation_derivative(activation, a) for a in cache.pre[:2]]

    fa = FeedbackAlignment(net, seed=7)
    b2t, b3t = fa.feedback  # B_l^T, shapes of W2 (4 x 6) and W3 (3 x 4)
    d2 = (e @ b3t) * fprime[1]  # delta_2 = (B_3 e) * f'(a_2)
    d1 = (d2 @ b2t) * fprime[0]  # delta_1 = (B_2 delta_2) * f'(a_1)
    expected = net.updates_from_deltas(cache, [d1, d2, e])
    assert relative_error(fa.compute_updates(x, y)[1], expected) < 1e-12

    dfa = DirectFeedbackAlignment(net, seed=7)
    D1, D2 = dfa.feedback  # shapes (3 x 6) and (3 x 4): straight from the output
    expected = net.updates_from_deltas(cache, [(e @ D1) * fprime[0], (e @ D2) * fprime[1], e])
    assert relative_error(dfa.compute_updates(x, y)[1], expected) < 1e-12


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear"])
def test_fa_with_transposed_forward_weights_is_backprop(activation, small_batch):
    x, y = small_batch
    net = MLP([5, 7, 6, 3], activation=activation, dtype=torch.float64, seed=2)
    rule = FeedbackAlignment(net, feedback=[w.detach() for w in net.weights[1:]])
    _, fa = rule.compute_updates(x, y)
    _, bp = backprop_gradients(net, x, y)
    _, ag = autograd_gradients(net, x, y)
    assert all(torch.equal(u, g) for u, g in zip(fa, bp))
    assert relative_error(fa, ag) < 1e-10
    assert update_angles(rule, x, y) == pytest.approx([0.0, 0.0, 0.0], abs=1e-5)
    assert weight_feedback_angles(rule) == pytest.approx([0.0, 0.0], abs=1e-5)


@pytest.mark.parametrize("name", list(RULES))
def test_output_layer_update_is_the_true_gradient(name, small_batch):
    x, y = small_batch
    net = MLP([5, 6, 4, 3], activation="tanh", dtype=torch.float64, seed=1)
    rule = make_rule(name, net, seed=4)
    _, updates = rule.compute_updates(x, y)
    _, grads = autograd_gradients(net, x, y)
    n = net.n_layers
    assert torch.allclose(updates[n - 1], grads[n - 1])  # dW_L
    assert torch.allclose(updates[2 * n - 1], grads[2 * n - 1])  # db_L
    assert update_angles(rule, x, y)[-1] == pytest.approx(0.0, abs=1e-5)


def test_dfa_equals_fa_with_one_hidden_layer(small_batch):
    x, y = small_batch
    net = MLP([5, 8, 3], dtype=torch.float64)
    fa, dfa = FeedbackAlignment(net, seed=5), DirectFeedbackAlignment(net, seed=5)
    assert torch.equal(fa.feedback[0], dfa.feedback[0])
    assert all(torch.equal(a, b) for a, b in zip(fa.compute_updates(x, y)[1], dfa.compute_updates(x, y)[1]))
    assert weight_feedback_angles(fa) == weight_feedback_angles(dfa)


def test_dfa_alignment_pairs_use_forward_path_products():
    net = MLP([5, 6, 4, 3], dtype=torch.float64)
    dfa = DirectFeedbackAlignment(net)
    (p1, d1), (p2, d2) = dfa.alignment_pairs()
    w1, w2, w3 = net.weights
    assert torch.allclose(p1, w3 @ w2) and p1.shape == d1.shape == (3, 6)
    assert torch.equal(p2, w3) and d2.shape == (3, 4)


def test_sign_symmetry_feedback_and_its_angle():
    net = MLP([5, 40, 30], dtype=torch.float64, seed=0)
    rule = SignSymmetry(net)
    (m,) = rule.backward_weights()
    w = net.weights[1].detach()
    assert torch.equal(torch.sign(m), torch.sign(w))
    assert float(m.abs().max()) == pytest.approx(float(w.abs().mean()))
    # cos(W, c sign W) = mean|w| / rms(w): about 30 degrees for uniform weights.
    expected = math.degrees(math.acos(float(w.abs().mean() / w.pow(2).mean().sqrt())))
    assert weight_feedback_angles(rule)[0] == pytest.approx(expected, abs=1e-6)
    assert 25 < expected < 35


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_kolen_pollack_difference_decays_with_weight_decay(momentum, xor_data):
    lr, decay, epochs = 0.1, 0.05, 20
    rule = KolenPollack(MLP([2, 8, 6, 2], activation="tanh", seed=0), seed=1)
    before = feedback_mismatch(rule)
    n_params = len(list(rule.net.parameters()))
    assert len(rule.parameters()) == n_params + 2
    fit(rule, xor_data, epochs=epochs, batch_size=4, lr=lr, momentum=momentum, weight_decay=decay, progress=False)
    after = feedback_mismatch(rule)
    if momentum == 0.0:  # one step per epoch: W - M shrinks by exactly (1 - lr * decay) each
        for b, a in zip(before, after):
            assert a == pytest.approx(b * (1 - lr * decay) ** epochs, rel=1e-5)
    else:
        assert all(a < 0.6 * b for b, a in zip(before, after))


def test_kolen_pollack_without_decay_keeps_its_difference_and_aligns(xor_data):
    rule = KolenPollack(MLP([2, 8, 2], activation="tanh", seed=0), seed=1)
    w_minus_m = rule.net.weights[1].detach() - rule.feedback[0]
    angle_before = weight_feedback_angles(rule)[0]
    fit(rule, xor_data, epochs=50, batch_size=4, lr=0.5, progress=False)
    assert torch.allclose(rule.net.weights[1].detach() - rule.feedback[0], w_minus_m, atol=1e-5)
    assert weight_feedback_angles(rule)[0] < angle_before


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_learns_xor(name, xor_data):
    rule = make_rule(name, MLP([2, 8, 2], activation="tanh", seed=0), seed=1)
    history = fit(rule, xor_data, epochs=200, batch_size=4, lr=0.5, progress=False)
    assert history.final("train_accuracy") == 1.0, name


def test_fa_learns_lillicrap_linear_task_and_aligns():
    data = linear_teacher_data(200, 100, seed=0)
    rule = FeedbackAlignment(linear_network(seed=0), scale=0.5, seed=1)
    record = alignment_recorder(data[0][:50], data[1][:50])
    history = fit(rule, data, epochs=30, batch_size=10, lr=0.002, progress=False, on_epoch_end=record)
    assert history.final("test_loss") < 0.1 * history["test_loss"][0]
    assert max(history["update_angle_1"][5:]) < 80
    assert history.final("weight_feedback_angle_1") < 60 < history["weight_feedback_angle_1"][0]
    assert set(history.metrics) >= {"update_angle_1", "weight_feedback_angle_1", "feedback_mismatch_1"}


def test_linear_task_data():
    x, y, xt, yt = linear_teacher_data(50, 20, seed=3)
    assert x.shape == (50, 30) and y.shape == (50, 10) and xt.shape == (20, 30)
    teacher = torch.linalg.lstsq(x, y).solution.T
    assert torch.allclose(xt @ teacher.T, yt, atol=1e-4)
    assert teacher.abs().max() <= 1.0
    assert torch.equal(linear_teacher_data(50, 20, seed=3)[0], x)
    with pytest.raises(ValueError):
        linear_teacher_data(0, 5)


def test_random_feedback_scale_sparsity_and_seed():
    (m,) = random_feedback([(100, 400)], seed=0)
    assert float(m.abs().max()) <= 400**-0.5
    assert torch.equal(m, random_feedback([(100, 400)], seed=0)[0])
    assert not torch.equal(m, random_feedback([(100, 400)], seed=1)[0])
    (big,) = random_feedback([(100, 400)], scale=0.5, seed=0)
    assert torch.allclose(big, m * 0.5 * 20)
    (sparse,) = random_feedback([(100, 400)], scale=1.0, sparsity=0.8, seed=0)
    assert (sparse == 0).double().mean() == pytest.approx(0.8, abs=0.01)
    assert float(sparse.abs().max()) <= 5.0 and float(sparse.abs().max()) > 4.9
    # kept entries are U[-5, 5]: E[m^2] = 0.2 * 25/3
    assert float(sparse.pow(2).mean()) == pytest.approx(0.2 * 25 / 3, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"feedback": [torch.zeros(3, 4)]}, "shapes"),
        ({"feedback": []}, "shapes"),
    ],
)
@pytest.mark.parametrize("rule_class", [FeedbackAlignment, DirectFeedbackAlignment, KolenPollack])
def test_bad_arguments_raise(rule_class, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rule_class(MLP([5, 6, 3]), **kwargs)


def test_unknown_rule_and_rule_without_feedback():
    with pytest.raises(ValueError, match="unknown rule"):
        make_rule("XYZ", MLP([2, 2]))
    with pytest.raises(ValueError, match="unknown rules"):
        run_mnist_comparison("digits", rules=("BP", "nope"))

    with pytest.raises(TypeError, match="no feedback"):
        weight_feedback_angles(LearningRule(MLP([2, 3, 2])))


def test_backprop_diagnostics_are_zero(small_batch):
    x, y = small_batch
    rule = Backprop(MLP([5, 6, 4, 3], dtype=torch.float64))
    assert update_angles(rule, x, y) == pytest.approx([0.0, 0.0, 0.0], abs=1e-5)
    assert weight_feedback_angles(rule) == [0.0, 0.0]
    assert feedback_mismatch(rule) == [0.0, 0.0]


def test_angle_between():
    a = torch.tensor([1.0, 0.0])
    assert angle_between(a, torch.tensor([0.0, 2.0])) == pytest.approx(90.0)
    assert angle_between(a, torch.tensor([-3.0, 0.0])) == pytest.approx(180.0)
    assert angle_between(a, torch.tensor([1.0, 1.0])) == pytest.approx(45.0)
    assert angle_between(a, a) == 0.0
    assert math.isnan(angle_between(a, torch.zeros(2)))


def test_fa_updates_descend_on_average(small_batch):
    """FA's hidden update is not the gradient, but its angle to it is a number in [0, 180]
    and FA with random feedback gives a different update than backprop."""
    x, y = small_batch
    rule = FeedbackAlignment(MLP([5, 6, 3], dtype=torch.float64, seed=0), seed=9)
    angles = update_angles(rule, x, y)
    assert 0 < angles[0] <= 180 and angles[1] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", list(RULES))
def test_rules_move_their_tensors_to_a_device(name, small_batch):
    x, y = small_batch
    rule = make_rule(name, MLP([5, 6, 4, 3], dtype=torch.float64))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rule.to(device)
    assert all(p.device.type == device.type for p in rule.parameters())
    for m in getattr(rule, "feedback", []):
        assert m.device.type == device.type
    loss, updates = rule.compute_updates(x.to(device), y.to(device))
    assert all(u.device.type == device.type for u in updates)
    assert len(update_angles(rule, x.to(device), y.to(device))) == 3


def test_paper_scale_comparison_runs_on_a_small_dataset():
    histories = run_mnist_comparison(
        "digits", rules=("BP", "KP"), hidden=16, activation="tanh", epochs=2, lr=0.5,
        device="cpu", progress=False,
    )
    assert set(histories) == {"BP", "KP"}
    for history in histories.values():
        assert history.epochs == [0, 1, 2]
        assert history.final("test_accuracy") > 0.7
        assert "update_angle_1" in history.metrics
