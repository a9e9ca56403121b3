import random

import numpy as np
import pytest
import torch

from dendnotes.backprop import Backprop
from dendnotes.mlp import MLP
from dendnotes.training import (
    DeviceUnavailableError,
    History,
    LearningRule,
    ReadoutOnly,
    TrainingDivergedError,
    choose_device,
    evaluate,
    fit,
    seed_everything,
)


def blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, generator=g) + 2.0 * y.unsqueeze(1)
    return x[:150], y[:150], x[150:], y[150:]


def test_seed_everything_makes_all_generators_repeat():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    gen = seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert torch.equal(torch.rand(2, generator=gen), torch.rand(2, generator=torch.Generator().manual_seed(3)))


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceUnavailableError, match="unsupported device"):
        choose_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="no GPU"):
            choose_device("cuda")


def test_fit_records_history_and_learns():
    data = blobs()
    history = fit(Backprop(MLP([3, 8, 2], seed=0)), data, epochs=5, batch_size=16, lr=0.5, progress=False)
    assert history.epochs == [0, 1, 2, 3, 4, 5]
    assert set(history.metrics) == {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    assert all(len(v) == 6 for v in history.metrics.values())
    assert history.final("test_accuracy") > 0.9
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.wall_time > 0
    assert history.to_dict()["epochs"] == history.epochs


def test_fit_is_deterministic_and_seed_matters():
    data = blobs()
    runs = [fit(Backprop(MLP([3, 8, 2])), data, epochs=2, lr=0.5, seed=s, progress=False) for s in (1, 1, 2)]
    assert runs[0].metrics == runs[1].metrics
    assert runs[0].metrics != runs[2].metrics


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizers_and_epoch_callback(optimizer):
    calls = []

    def on_epoch_end(epoch, rule):
        calls.append(epoch)
        return {"weight_norm": float(rule.net.weights[0].detach().norm())}

    history = fit(Backprop(MLP([3, 2])), blobs(), epochs=3, lr=0.01, optimizer=optimizer, momentum=0.0,
                  progress=False, on_epoch_end=on_epoch_end)
    assert calls == [0, 1, 2, 3]
    assert len(history["weight_norm"]) == 4 and history["weight_norm"][0] != history["weight_norm"][-1]


def test_divergence_is_reported_clearly():
    x, y, xt, yt = blobs()
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch 1, batch \d+: loss is (nan|inf).*lr=1e\+30"):
        fit(Backprop(MLP([3, 8, 2], loss="mse")), (x * 1e3, y, xt, yt), epochs=2, lr=1e30, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"lr": 0.0}, "learning rate"), ({"lr": float("nan")}, "learning rate"), ({"optimizer": "rmsprop"}, "unknown optimizer"),
     ({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments(kwargs, message):
    args = {"epochs": 1, "progress": False} | kwargs
    with pytest.raises(ValueError, match=message):
        fit(Backprop(MLP([3, 2])), blobs(), **args)


def test_bad_data_is_rejected():
    x, y, xt, yt = blobs()
    with pytest.raises(ValueError, match="x_train, y_train, x_test, y_test"):
        fit(Backprop(MLP([3, 2])), (x, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="train set has 150 inputs but 149 labels"):
        fit(Backprop(MLP([3, 2])), (x, y[:-1], xt, yt), epochs=1, progress=False)


def test_evaluate_and_base_rule():
    x, y, _, _ = blobs()
    rule = Backprop(MLP([3, 2]))
    result = evaluate(rule, x, y, batch_size=7)
    assert set(result) == {"loss", "accuracy"} and 0 <= result["accuracy"] <= 1
    assert result["loss"] == pytest.approx(float(rule.net.loss(rule.predict(x), y)), rel=1e-5)
    with pytest.raises(NotImplementedError, match="compute_updates"):
        LearningRule(MLP([3, 2])).compute_updates(x, y)


def test_history_errors():
    history = History()
    history.log(0, {"a": 1})
    with pytest.raises(KeyError, match="recorded: \\['a'\\]"):
        history["b"]


def test_readout_only_trains_the_last_layer_and_nothing_else():
    from dendnotes.feedback_alignment import KolenPollack

    for make in (Backprop, lambda net: KolenPollack(net, seed=1)):
        net = MLP([3, 8, 6, 2], activation="tanh", seed=0)
        rule = ReadoutOnly(make(net))
        start = [p.detach().clone() for p in rule.rule.parameters()]
        history = fit(rule, blobs(), epochs=10, lr=0.5, progress=False)
        assert history.final("train_loss") < 0.7 * history["train_loss"][0]
        changed = [not torch.equal(p, s) for p, s in zip(rule.rule.parameters(), start)]
        # parameters(): W1, W2, W3, b1, b2, b3 (+ KP's feedback); only W3 and b3 move
        assert changed[:6] == [False, False, True, False, False, True] and not any(changed[6:])


def test_readout_only_update_is_the_readout_gradient():
    net = MLP([3, 5, 4], activation="sigmoid", seed=2)
    x, y = blobs()[:2]
    _, gradients = Backprop(net).compute_updates(x, y)
    rule = ReadoutOnly(Backprop(net))
    _, updates = rule.compute_updates(x, y)
    assert rule.parameters() == [net.weights[-1], net.biases[-1]]
    assert torch.equal(updates[0], gradients[1]) and torch.equal(updates[1], gradients[3])


def test_readout_only_works_for_an_energy_network_and_rejects_a_single_layer():
    from dendnotes.equilibrium_propagation import EnergyNetwork, EquilibriumPropagation

    net = EnergyNetwork([3, 4, 2], free_steps=5, seed=0)
    rule = ReadoutOnly(EquilibriumPropagation(net, nudged_steps=2))
    assert rule.parameters() == [net.weights[-1], net.biases[-1]]
    _, updates = rule.compute_updates(*blobs()[:2])
    assert [u.shape for u in updates] == [(2, 4), (2,)]
    with pytest.raises(ValueError, match="at least one hidden layer"):
        ReadoutOnly(Backprop(MLP([3, 2])))
