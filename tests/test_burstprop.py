import pytest
import torch

from dendnotes.backprop import Backprop, autograd_gradients, backprop_gradients, relative_error
from dendnotes.burstprop import (
    GAP_BENCHMARK_RULES,
    Burstprop,
    SigmoidMLP,
    hidden_update_angles,
    linearised_burst_changes,
    backprop_equivalent_sgd,
    output_burst_probabilities,
    read_gap_benchmark,
    run_mnist_burstprop,
)
from dendnotes.bursts import one_thread
from dendnotes.feedback_alignment import angle_between
from dendnotes.mlp import MLP
from dendnotes.training import fit


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(24, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (24,), generator=g)
    return x, y


def symmetric(net):
    """Feedback equal to the forward weights: burstprop's analogue of backprop."""
    return [w.detach().clone() for w in net.weights[1:]]


def test_sigmoid_mlp_gradients_match_autograd(batch):
    x, y = batch
    net = SigmoidMLP([6, 8, 5, 3], dtype=torch.float64, seed=1)
    loss_bp, grads_bp = backprop_gradients(net, x, y)
    loss_ag, grads_ag = autograd_gradients(net, x, y)
    assert torch.allclose(loss_bp, loss_ag)
    assert relative_error(grads_bp, grads_ag) < 1e-10
    # output biases start at logit(1/3), the mean of a one-hot target over 3 classes
    assert torch.allclose(torch.sigmoid(net.biases[-1]), torch.full((3,), 1 / 3, dtype=torch.float64))


def test_output_teaching_signal():
    e = torch.tensor([[0.2, 0.9]])
    t = torch.tensor([[1.0, 0.0]])
    p, p_teach = output_burst_probabilities(e, t, 0.2)
    assert torch.allclose(p, torch.full_like(e, 0.2))
    assert torch.allclose(p_teach, 0.2 * torch.tensor([[1 + 0.8 * 0.8, 1 - 0.9 * 0.1]]))


def test_output_update_is_p0_times_gradient(batch):
    x, y = batch
    net = SigmoidMLP([6, 8, 3], dtype=torch.float64, seed=2)
    rule = Burstprop(net, p_baseline=0.2)
    _, updates = rule.compute_updates(x, y)
    _, grads = backprop_gradients(net, x, y)
    assert torch.allclose(updates[1], 0.2 * grads[1])  # output weights
    assert torch.allclose(updates[3], 0.2 * grads[3])  # output biases


def test_weak_teacher_limit_is_backprop_through_feedback(batch):
    x, y = batch
    net = SigmoidMLP([6, 8, 7, 3], dtype=torch.float64, seed=3)
    errors = []
    for p0 in (0.2, 0.02, 0.002):
        rule = Burstprop(net, p_baseline=p0, seed=4)
        signals = rule.burst_signals(net.forward_with_cache(x), y)
        exact = [bt - b for b, bt in zip(signals["b"], signals["b_teach"])]
        errors.append(relative_error(exact[:-1], linearised_burst_changes(rule, x, y)[:-1]))
    assert errors[0] < 0.05
    assert errors[2] < errors[1] / 5 < errors[0] / 25  # second-order error vanishes as p0 -> 0


def test_hidden_update_aligns_with_backprop_under_symmetric_feedback(batch):
    x, y = batch
    net = SigmoidMLP([6, 10, 8, 3], dtype=torch.float64, seed=5)
    rule = Burstprop(net, feedback=symmetric(net))
    _, ours = rule.compute_updates(x, y)
    _, grads = backprop_gradients(net, x, y)
    for layer in range(2):
        dot = float((ours[layer] * grads[layer]).sum())
        assert dot > 0
        assert angle_between(ours[layer], grads[layer]) < 10


@one_thread()  # tiny matrices: threads only add overhead
def test_hidden_update_aligns_with_backprop_after_learning_with_fixed_feedback():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 8, generator=g)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).long()
    net = SigmoidMLP([8, 20, 2], seed=1)
    rule = Burstprop(net, hidden_lr_scale=4.0, seed=2)
    start = hidden_update_angles(rule, x, y)[0]
    fit(rule, (x, y, x, y), epochs=30, batch_size=20, lr=5.0, momentum=0.9, progress=False)
    end = hidden_update_angles(rule, x, y)[0]
    assert end < 80 and end < start


@one_thread()  # tiny matrices: threads only add overhead
def test_learned_feedback_follows_forward_weights(batch):
    x, y = batch
    net = SigmoidMLP([6, 8, 7, 3], dtype=torch.float64, seed=6)
    rule = Burstprop(net, learn_feedback=True, seed=7)
    params = rule.parameters()
    assert len(params) == len(list(net.parameters())) + 2
    _, updates = rule.compute_updates(x, y)
    for k in range(2):  # Y_l gets W_l's update, l = 2..L
        assert torch.equal(updates[-2 + k], updates[1 + k])
    data = (x.float(), y, x.float(), y)
    net32 = SigmoidMLP([6, 8, 7, 3], seed=6)
    rule = Burstprop(net32, learn_feedback=True, seed=7)
    before = angle_between(net32.weights[-1], rule.feedback[-1])
    fit(rule, data, epochs=40, batch_size=8, lr=2.0, weight_decay=0.02, progress=False)
    assert angle_between(net32.weights[-1], rule.feedback[-1]) < before / 2


def test_recurrent_weights_cancel_the_apical_drive(batch):
    x, y = batch
    net = SigmoidMLP([6, 8, 3], dtype=torch.float64, seed=8)
    rule = Burstprop(net, recurrent=True, recurrent_lr=0.05, feedback_scale=2.0, seed=9)
    drive = lambda: float(rule.burst_signals(net.forward_with_cache(x), y)["drive"][0].abs().mean())
    start = drive()
    for _ in range(200):
        rule.compute_updates(x, y)
    assert drive() < start / 3


@one_thread()  # tiny matrices: threads only add overhead
def test_burstprop_trains_with_fit():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(300, 10, generator=g)
    y = torch.argmax(x[:, :3], dim=1)
    net = SigmoidMLP([10, 30, 3], seed=0)
    history = fit(Burstprop(net, hidden_lr_scale=4.0), (x, y, x, y), epochs=20, batch_size=20, lr=5.0,
                  momentum=0.9, progress=False)
    assert history.final("train_accuracy") > 0.8
    assert history.final("train_loss") < 0.7 * history["train_loss"][0]


def test_bad_input_is_rejected():
    with pytest.raises(TypeError):
        Burstprop(MLP([4, 3, 2]))
    net = SigmoidMLP([4, 3, 2])
    with pytest.raises(ValueError):
        Burstprop(net, p_baseline=1.5)
    with pytest.raises(ValueError):
        Burstprop(net, feedback=[torch.zeros(3, 3)])
    with pytest.raises(ValueError):
        run_mnist_burstprop("digits", rules=("nope",))


@one_thread()  # tiny matrices: threads only add overhead
def test_paper_scale_function_runs_on_a_small_dataset():
    histories = run_mnist_burstprop("digits", hidden=(16,), epochs=1, rules=("BP", "Burstprop (learned Y)"),
                                    device="cpu", progress=False)
    assert set(histories) == {"BP", "Burstprop (learned Y)"}
    assert "update_angle_1" in histories["Burstprop (learned Y)"].metrics


def test_backprop_equivalent_sgd_takes_backprops_output_step(batch):
    x, y = batch
    lr, decay = 0.3, 0.01
    bp_net, burst_net = (SigmoidMLP([6, 8, 3], dtype=torch.float64, seed=2) for _ in range(2))
    step = dict(epochs=1, batch_size=len(x), momentum=0.8, progress=False)
    fit(Backprop(bp_net), (x, y, x, y), lr=lr, weight_decay=decay, **step)
    burst_lr, burst_decay = backprop_equivalent_sgd(lr, decay)
    fit(Burstprop(burst_net), (x, y, x, y), lr=burst_lr, weight_decay=burst_decay, **step)
    assert torch.allclose(bp_net.weights[1], burst_net.weights[1])  # same gradient step and same shrinkage
    assert torch.allclose(bp_net.biases[1], burst_net.biases[1])
    with pytest.raises(ValueError, match="lr > 0"):
        backprop_equivalent_sgd(0.0)


def test_read_gap_benchmark(tmp_path):
    record = read_gap_benchmark()  # the committed result has every rule, with the gap to backprop
    for rule in GAP_BENCHMARK_RULES:
        summary = record["summary"][rule]
        assert len(summary["test_per_seed"]) == record["settings"]["seeds"]
        assert summary["gap_points"] == pytest.approx(100 * (summary["test_mean"] - record["summary"]["BP"]["test_mean"]))
    with pytest.raises(FileNotFoundError, match="no burstprop benchmark"):
        read_gap_benchmark(tmp_path / "missing.json")
    partial = tmp_path / "partial.json"
    partial.write_text('{"summary": {"BP": {}}}')
    with pytest.raises(ValueError, match="no result for"):
        read_gap_benchmark(partial)
