import json
import math

import numpy as np
import pytest
import torch

from dendnotes.compartments import (
    DendriteParams,
    PSPTrace,
    hidden_drives,
    initial_weight_moments,
    mean_psp,
    output_drives,
    phase_lengths,
    psp_kernel,
    soma_euler_step,
    soma_steady_state,
    uniforms,
)
from dendnotes.segregated_dendrites import (
    PAPER_LEARNING_RATES,
    PAPER_TEST_ERROR,
    NetworkState,
    PaperEvaluation,
    SegregatedDendrites,
    SegregatedNetwork,
    backprop_deltas,
    compiled_phase,
    compiled_update_angles,
    local_deltas,
    output_loss,
    run_paper_experiment,
    update_angles,
    weight_gradients,
)
from dendnotes.segregated_dendrites_kernel import KernelRandom
from dendnotes.training import fit

P = DendriteParams()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Many small tensor operations: one thread is faster, and robust on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_data(n=60, n_in=20, n_classes=3, seed=0):
    """Inputs in [0, 1] whose bright pixels depend on the class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    prototypes = (torch.rand(n_classes, n_in, generator=g) > 0.6).double()
    x = (0.8 * prototypes[y] + 0.3 * torch.rand(n, n_in, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


# ---------------------------------------------------------------------------
# parameters and neurons
# ---------------------------------------------------------------------------


def test_defaults_are_the_papers_table_1():
    assert (P.dt, P.phi_max_hz, P.tau_s, P.tau_L, P.settle) == (1.0, 200.0, 3.0, 10.0, 30.0)
    assert (P.g_b, P.g_a, P.g_d, P.g_l, P.E_E, P.E_I) == (0.6, 0.0, 0.6, 0.1, 8.0, -8.0)
    assert P.P_hidden == pytest.approx(20 / 0.2) and P.P_output == pytest.approx(20 / 0.2**2)
    assert P.k_b == pytest.approx(0.6 / 0.7) and P.k_d == pytest.approx(0.6 / 0.7)
    assert DendriteParams(g_a=0.6).k_b == pytest.approx(0.6 / 1.3)
    assert PAPER_LEARNING_RATES == {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}


@pytest.mark.parametrize(
    "bad", [dict(g_a=-0.1), dict(tau_s=10.0), dict(dt=0.0), dict(settle=60.0), dict(g_b=2.0),
            dict(phi_max_hz=2000.0, dt=1.0), dict(g_l=float("nan"))]
)
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        DendriteParams(**bad)


def test_psp_kernel_shape_and_area():
    t = torch.arange(0, 400, 0.01, dtype=torch.float64)
    k = psp_kernel(t)
    assert float(k[0]) == 0.0 and float(psp_kernel(torch.tensor(-1.0))) == 0.0
    assert float(k.sum() * 0.01) == pytest.approx(1.0, abs=1e-3)
    peak = math.log(10 / 3) * 3 * 10 / (10 - 3)  # d kappa / dt = 0
    assert float(t[k.argmax()]) == pytest.approx(peak, abs=0.01)


def test_psp_trace_equals_convolution_with_the_kernel():
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(200, 3, generator=g) < 0.1).double()
    trace = PSPTrace.zeros(3, dtype=torch.float64)
    lags = torch.arange(1, 201, dtype=torch.float64)
    for n in range(200):
        trace.step(spikes[n], P)
        expected = (psp_kernel(lags[: n + 1].flip(0)).unsqueeze(1) * spikes[: n + 1]).sum(0)
        assert torch.allclose(trace.psp(P), expected, rtol=0, atol=1e-14)


def test_sparse_trace_step_and_window_mean_match_dense_sums():
    g = torch.Generator().manual_seed(1)
    spikes = torch.rand(80, 2, 4, generator=g) < 0.2
    dense, sparse = PSPTrace.zeros((2, 4), dtype=torch.float64), PSPTrace.zeros((2, 4), dtype=torch.float64)
    for n in range(20):
        dense.step(spikes[n], P)
        sparse.step_sparse(spikes[n].reshape(-1).nonzero().squeeze(1), P)
    start, total = dense.copy(), torch.zeros(2, 4, dtype=torch.float64)
    for n in range(20, 80):
        dense.step(spikes[n], P)
        sparse.step_sparse(spikes[n].reshape(-1).nonzero().squeeze(1), P)
        total += dense.psp(P)
    assert torch.allclose(dense.long, sparse.long) and torch.allclose(dense.short, sparse.short)
    count = spikes[20:].sum(0).double()
    assert torch.allclose(mean_psp(start, dense, count, 60, P), total / 60, atol=1e-12)


@pytest.mark.parametrize("g_a", [0.0, 0.05, 0.6])
def test_hidden_soma_converges_to_closed_form_steady_state(g_a):
    p = DendriteParams(g_a=g_a)
    basal = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    apical = torch.tensor([-3.0, 4.0, 0.0], dtype=torch.float64)
    v = torch.zeros(3, dtype=torch.float64)
    for _ in range(300):
        v = soma_euler_step(v, hidden_drives(basal, apical, p), p)
    expected = (p.g_b * basal + g_a * apical) / (p.g_l + p.g_b + g_a)
    assert torch.allclose(v, expected, atol=1e-10)
    assert torch.allclose(soma_steady_state(hidden_drives(basal, apical, p), p), expected)
    if g_a == 0:
        assert torch.allclose(expected, p.k_b * basal)


def test_output_soma_steady_state_with_teaching_conductances():
    basal = torch.tensor([[1.0, -2.0, 0.3]], dtype=torch.float64)
    teaching = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    for target in (None, teaching):
        v = torch.zeros_like(basal)
        for _ in range(300):
            v = soma_euler_step(v, output_drives(basal, target, P), P)
        if target is None:
            expected = P.k_d * basal
        else:
            expected = (P.g_d * basal + target * P.E_E + (1 - target) * P.E_I) / (P.g_l + P.g_d + 1.0)
        assert torch.allclose(v, expected, atol=1e-10)
        assert torch.allclose(soma_steady_state(output_drives(basal, target, P), P), expected)
    # the teaching signal drives the correct unit towards phi_max and silences the others
    rates = torch.sigmoid(expected)
    assert rates[0, 1] > 0.95 and rates[0, [0, 2]].max() < 0.05


def test_phase_lengths_follow_the_wald_distribution():
    lengths = np.array(phase_lengths(np.random.default_rng(0), 20000, P))
    assert lengths.min() >= 50 and lengths.dtype.kind == "i"
    extra = np.random.default_rng(0).wald(2.0, 1.0, 20000)
    assert lengths.mean() == pytest.approx(50 + np.floor(extra).mean(), abs=1e-9)
    assert 51 < lengths.mean() < 52.5


def test_initial_weights_give_the_intended_voltage_statistics():
    n_in = 400
    mean, sd = initial_weight_moments(n_in, v_sd=3.0)
    g = torch.Generator().manual_seed(0)
    w = mean + math.sqrt(3) * sd * (2 * torch.rand(2000, n_in, generator=g, dtype=torch.float64) - 1)
    v_pre = 3 + 3 * torch.randn(2000, n_in, generator=g, dtype=torch.float64)
    v = (w * (0.05 * v_pre)).sum(1) + 0.8
    assert float(v.mean()) == pytest.approx(3, abs=0.2)
    assert float(v.std()) == pytest.approx(3, abs=0.2)
    assert initial_weight_moments(n_in)[1] == pytest.approx(2 * sd, rel=0.01)  # default s.d. 6


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


def test_network_shapes_feedback_variants_and_bad_input():
    net = SegregatedNetwork([20, 8, 6, 3], seed=1)
    assert [tuple(w.shape) for w in net.weights] == [(8, 20), (6, 8), (3, 6)]
    assert [tuple(y.shape) for y in net.feedback] == [(8, 3), (6, 3)]
    assert len(list(net.parameters())) == 6  # Y is not trained
    sym = SegregatedNetwork([20, 8, 6, 3], feedback="symmetric", seed=1)
    assert torch.equal(sym.feedback[1], sym.weights[2].T)
    assert torch.allclose(sym.feedback[0], sym.weights[1].T @ sym.weights[2].T)
    with torch.no_grad():
        sym.weights[2].mul_(2)
    sym.refresh_feedback()
    assert torch.equal(sym.feedback[1], sym.weights[2].T)
    random_fb = SegregatedNetwork([20, 50, 10], seed=3)
    sparse = SegregatedNetwork([20, 50, 10], feedback="sparse", seed=3)
    assert float((sparse.feedback[0] == 0).double().mean()) == pytest.approx(0.8, abs=0.01)
    nonzero = sparse.feedback[0] != 0
    assert torch.allclose(sparse.feedback[0][nonzero], 5 * random_fb.feedback[0][nonzero])
    with pytest.raises(ValueError, match="feedback"):
        SegregatedNetwork([4, 3], feedback="learned")
    with pytest.raises(ValueError, match="shape"):
        net.steady_phase(torch.zeros(2, 19))
    with pytest.raises(ValueError, match="labels"):
        net.check_input(torch.zeros(2, 20), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="mode"):
        SegregatedDendrites(net, mode="analog")
    with pytest.raises(ValueError, match="learning rates"):
        SegregatedDendrites(net, learning_rates=(0.1, 0.1))
    with pytest.raises(ValueError, match="no learning rates"):
        SegregatedDendrites(SegregatedNetwork([4, 3, 3, 3, 2]))


@pytest.mark.parametrize("g_a", [0.0, 0.6])
def test_deterministic_dynamics_settle_to_the_rate_mode_steady_state(g_a):
    """The time-stepped simulation with rates in place of spikes averages to the rate mode."""
    x, y = toy_data(5)
    net = SegregatedNetwork([20, 12, 3], params=DendriteParams(g_a=g_a), dtype=torch.float64, seed=2)
    teaching = net.teaching(y)
    for target in (None, teaching):
        state = NetworkState.at_rest(net, (5,))
        net.run_phase(state, x, 200, target, stochastic=False)  # settle
        sim = net.run_phase(state, x, 130, target, stochastic=False)
        steady = net.steady_phase(x, target)
        # the discrete kernel sums to 0.9973 instead of 1: filtered rates are 0.3 % low
        assert torch.allclose(sim.inputs[0], steady.inputs[0] * 0.9973, rtol=1e-3)
        for a, b in zip(sim.soma + sim.apical, steady.soma + steady.apical):
            assert torch.allclose(a, b, atol=0.05), (a - b).abs().max()
        assert torch.allclose(sim.output_rate, steady.output_rate, atol=1e-3)


@pytest.mark.parametrize("g_a", [0.0, 0.05])
def test_rate_mode_target_phase_shortcut(g_a):
    """steady_phases reuses the forward hidden layers when g_a = 0; it must equal the full solve."""
    x, y = toy_data(6)
    net = SegregatedNetwork([20, 8, 5, 3], params=DendriteParams(g_a=g_a), dtype=torch.float64, seed=3)
    with torch.no_grad():
        forward, target = net.steady_phases(x, y)
        full = net.steady_phase(x, net.teaching(y))
    for a, b in zip(target.soma + target.apical + target.inputs, full.soma + full.apical + full.inputs):
        assert torch.allclose(a, b, atol=1e-7)
    if g_a > 0:  # apical feedback changes the hidden somata between the phases
        assert not torch.allclose(forward.soma[0], target.soma[0], atol=1e-4)


def test_plateau_potentials_are_sigmoids_of_mean_apical_voltage_after_settling():
    x, y = toy_data(2)
    net = SegregatedNetwork([20, 7, 3], seed=4)
    state = NetworkState.at_rest(net, (2,))
    record = {}
    g = torch.Generator().manual_seed(0)
    phase = net.run_phase(state, x.float(), 55, generator=g, record=record)
    apical = torch.stack(record["apical_0"])  # (steps, batch, neurons)
    assert apical.shape == (55, 2, 7)
    assert torch.allclose(phase.apical[0], apical[30:].mean(0), atol=1e-6)
    soma = torch.stack(record["soma_0"])
    assert torch.allclose(phase.soma[0], soma[30:].mean(0), atol=1e-6)
    # the rule's plateau potentials: alpha^f = sigma(mean apical voltage of the forward phase)
    target = net.run_phase(state, x.float(), 52, net.teaching(y), generator=g)
    delta = local_deltas(net, phase, target)[0]
    alpha_f, alpha_t = torch.sigmoid(apical[30:].mean(0)), torch.sigmoid(target.apical[0])
    expected = -P.k_b * (alpha_t - alpha_f) * P.phi_max * torch.sigmoid(phase.soma[0]) * (1 - torch.sigmoid(phase.soma[0]))
    assert torch.allclose(delta, expected, atol=1e-7)


def test_spiking_averages_approach_the_steady_state():
    """Lemma 1 of the paper: with long phases, spiking averages are close to the rate model's."""
    x, _ = toy_data(40)
    net = SegregatedNetwork([20, 30, 3], seed=5)
    state = NetworkState.at_rest(net, (40,))
    sim = net.run_phase(state, x.float(), 600, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        steady = net.steady_phase(x.float())
    assert torch.allclose(sim.inputs[0].mean(0), steady.inputs[0].mean(0), atol=0.004)
    # errors small compared with the spread of voltages (the 3 output neurons see noisier input)
    for a, b, tolerance in zip(sim.soma, steady.soma, (0.1, 0.3)):
        assert float((a - b).abs().mean()) < tolerance * float(b.std())


# ---------------------------------------------------------------------------
# learning rules: gradients, backprop comparison, batching
# ---------------------------------------------------------------------------


def rate_phases_with_grad(net, x, y):
    with torch.enable_grad():
        return net.steady_phase(x), net.steady_phase(x, net.teaching(y))


def test_rate_mode_updates_are_gradients_of_the_local_losses():
    """With targets held fixed, the rules descend L^1 and L^0 exactly in the rate model (autograd check)."""
    x, y = toy_data(7)
    net = SegregatedNetwork([20, 9, 3], dtype=torch.float64, seed=6)
    forward, target = rate_phases_with_grad(net, x, y)
    grads = weight_gradients(local_deltas(net, forward, target), forward)
    p = net.params
    with torch.enable_grad():
        l1 = ((target.output_rate.detach() - p.phi_max * torch.sigmoid(forward.soma[-1])) ** 2).sum(1).mean() / 2
        phi_star = (forward.inputs[1] + torch.sigmoid(target.apical[0]) - torch.sigmoid(forward.apical[0])).detach()
        l0 = ((phi_star - p.phi_max * torch.sigmoid(forward.soma[0])) ** 2).sum(1).mean() / 2
        auto_out = torch.autograd.grad(l1, [net.weights[1], net.biases[1]], retain_graph=True)
        auto_hidden = torch.autograd.grad(l0, [net.weights[0], net.biases[0]])
    assert torch.allclose(grads[1], auto_out[0], atol=1e-12) and torch.allclose(grads[3], auto_out[1], atol=1e-12)
    assert torch.allclose(grads[0], auto_hidden[0], atol=1e-12) and torch.allclose(grads[2], auto_hidden[1], atol=1e-12)
    loss = output_loss(net, forward, target).detach()
    assert float(loss) == pytest.approx(float(l1.detach()) * 2 / p.phi_max**2)


def test_backprop_reference_is_the_gradient_of_the_output_loss():
    """backprop_deltas = d L^1 / d(hidden weights) of the equivalent rate network (autograd check)."""
    x, y = toy_data(6)
    net = SegregatedNetwork([20, 9, 5, 3], dtype=torch.float64, seed=7)
    forward, target = rate_phases_with_grad(net, x, y)
    bp = weight_gradients(backprop_deltas(net, forward, target), forward)
    with torch.enable_grad():
        l1 = ((target.output_rate.detach() - net.params.phi_max * torch.sigmoid(forward.soma[-1])) ** 2).sum(1)
        auto = torch.autograd.grad(l1.mean() / 2, list(net.weights))
    for a, b in zip(bp[:3], auto):
        assert torch.allclose(a, b, atol=1e-12)


def test_hidden_update_points_within_90_degrees_of_backprop_after_learning():
    """Feedback alignment in the segregated-dendrite network: the angle starts near 90 degrees
    and falls below it as the output weights come to match the random feedback."""
    x, y = toy_data(120)
    net = SegregatedNetwork([20, 30, 3], dtype=torch.float64, seed=8)
    rule = SegregatedDendrites(net, mode="rate")
    before = update_angles(net, *rule.phases(x, y))[0]
    fit(rule, (x, y, x, y), epochs=30, batch_size=10, lr=3.0, progress=False)
    forward, target = rule.phases(x, y)
    after = update_angles(net, forward, target)[0]
    batch_angle = update_angles(net, forward, target, per_example=False)[0]
    with torch.no_grad():
        dot = (weight_gradients(local_deltas(net, forward, target), forward)[0]
               * weight_gradients(backprop_deltas(net, forward, target), forward)[0]).sum()
    assert float(dot) > 0
    assert float(before.mean()) > 80
    assert float(after.mean()) < 75 and float(batch_angle) < 80
    assert float(after.mean()) < float(before.mean()) - 15


def test_rate_mode_learns():
    x, y = toy_data(150)
    data = (x.float(), y, x.float(), y)
    history = fit(SegregatedDendrites(SegregatedNetwork([20, 30, 3], seed=9), mode="rate"), data,
                  epochs=10, batch_size=10, lr=2.0, progress=False)
    assert history.final("train_accuracy") > 0.95


def test_spiking_training_reduces_the_loss():
    x, y = toy_data(60)
    data = (x.float(), y, x.float(), y)
    net = SegregatedNetwork([20, 30, 3], params=DendriteParams(test_phase=100.0), seed=9)
    rule = SegregatedDendrites(net, mode="spiking")
    evaluation = PaperEvaluation(rule)
    history = fit(rule, data, epochs=2, batch_size=4, lr=2.0, progress=False, **evaluation.hooks())
    assert len(evaluation.angles[0]) == 2 * 15
    assert np.mean(evaluation.angles[0][15:]) == pytest.approx(history["hidden_angle_0"][-1])
    assert history["test_loss"][-1] < 0.5 * history["test_loss"][0]
    assert set(history.metrics) == {"test_loss", "test_accuracy", "train_accuracy", "hidden_angle_0", "seconds"}


def test_spiking_updates_agree_with_rate_mode_updates_on_average():
    """Lemma 1 of the paper at work: averaged over examples, spikes give the rate model's update."""
    x, y = toy_data(200)
    net = SegregatedNetwork([20, 40, 3], seed=13)
    rate = SegregatedDendrites(net, mode="rate").compute_updates(x.float(), y)[1]
    spiking = SegregatedDendrites(net, mode="spiking", seed=1)
    spiking.compute_updates(x.float(), y)  # settle from rest
    spike = spiking.compute_updates(x.float(), y)[1]
    cosine = [float(torch.nn.functional.cosine_similarity(a.reshape(-1), b.reshape(-1), dim=0))
              for a, b in zip(rate, spike)]
    assert min(cosine[1], cosine[3]) > 0.8, cosine  # output layer (30 noisy hidden neurons)
    assert min(cosine[0], cosine[2]) > 0.6, cosine  # hidden layer


def copy_state(state: NetworkState) -> NetworkState:
    return NetworkState(state.input_trace.copy(), [v.clone() for v in state.soma], [t.copy() for t in state.traces])


def assert_same_averages(a, b, tol=1e-12):
    for name in ("soma", "apical", "inputs"):
        for u, v in zip(getattr(a, name), getattr(b, name), strict=True):
            assert torch.allclose(u, v, rtol=0, atol=tol), name
    assert torch.allclose(a.output_rate, b.output_rate, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "sizes, batch, n_steps, teach, g_a",
    [([20, 9, 3], 1, 57, False, 0.0), ([20, 9, 3], 1, 61, True, 0.0), ([20, 9, 5, 3], 1, 55, True, 0.0),
     ([20, 9, 3], 4, 130, True, 0.0), ([20, 12, 4], 3, 500, False, 0.0),  # the last: a 500 ms test phase
     ([20, 9, 3], 2, 70, True, 0.6), ([20, 9, 5, 3], 1, 60, False, 0.05), ([20, 3], 2, 52, True, 0.0)],
)
def test_compiled_phase_equals_the_step_by_step_phase(sizes, batch, n_steps, teach, g_a):
    """The compiled phase gives run_phase's averages and state, fed the same random numbers (any g_a)."""
    net = SegregatedNetwork(sizes, params=DendriteParams(g_a=g_a), dtype=torch.float64, seed=1)
    x, y = toy_data(batch, n_in=sizes[0], n_classes=sizes[-1], seed=2)
    teaching = net.teaching(y) if teach else None
    state = NetworkState.at_rest(net, (batch,))
    net.run_phase(state, x, 45, generator=KernelRandom(4))  # a state that is not at rest
    fast_state = copy_state(state)
    reference = net.run_phase(state, x, n_steps, teaching, generator=KernelRandom(5))
    fast = compiled_phase(net, fast_state, x, n_steps, teaching, generator=KernelRandom(5))
    assert_same_averages(reference, fast)
    for a, b in zip([state.input_trace, *state.traces], [fast_state.input_trace, *fast_state.traces]):
        assert torch.allclose(a.long, b.long, atol=1e-12) and torch.allclose(a.short, b.short, atol=1e-12)
    for a, b in zip(state.soma, fast_state.soma):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("sizes, g_a, feedback_signal", [([20, 9, 5, 3], 0.0, "spikes"), ([20, 9, 3], 0.6, "spikes"),
                                                         ([20, 9, 3], 0.0, "rates"), ([20, 3], 0.0, "spikes")])
def test_compiled_online_training_equals_the_step_by_step_reference(sizes, g_a, feedback_signal):
    """Online (one example, two phases, one update in place), state carried over: the same weights after
    every step as the step-by-step phases with compute_updates and an SGD step, and the same test output."""
    x, y = toy_data(4, n_in=20, n_classes=3)
    nets = [SegregatedNetwork(sizes, params=DendriteParams(g_a=g_a), dtype=torch.float64, seed=10) for _ in range(2)]
    rules = [SegregatedDendrites(net, seed=3, stepwise=stepwise, feedback_signal=feedback_signal)
             for net, stepwise in zip(nets, (False, True))]
    before = [p.clone() for p in nets[0].parameters()]
    for i in range(4):
        losses = [rule.train_step(x[i : i + 1], y[i : i + 1], 1.5) for rule in rules]
        assert losses[0] == pytest.approx(losses[1], rel=1e-9)
        for a, b in zip(*(net.parameters() for net in nets)):
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
    assert all(not torch.equal(a, b) for a, b in zip(before, nets[0].parameters()))
    assert all(w.T.is_contiguous() for w in nets[0].weights)  # updated in place, layout kept
    test = [rule.predict(x) for rule in rules]  # 500 ms test phases
    assert torch.allclose(test[0], test[1], atol=1e-10)


def test_compiled_update_equals_compute_updates_in_float32():
    """The production dtype: the in-place update matches compute_updates + SGD to float32 rounding."""
    x, y = toy_data(2, n_in=20)
    nets = [SegregatedNetwork([20, 9, 3], seed=4) for _ in range(2)]
    rules = [SegregatedDendrites(net, seed=2) for net in nets]
    rules[0].train_step(x[:1].float(), y[:1], 1.0)
    loss, updates = rules[1].compute_updates(x[:1].float(), y[:1])
    for p, u, q in zip(nets[1].parameters(), updates, nets[0].parameters()):
        assert torch.allclose(p - u, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes", [[20, 3], [20, 9, 3], [20, 9, 5, 3]])
def test_compiled_update_angles_equal_update_angles(sizes):
    x, y = toy_data(3, n_in=20)
    rule = SegregatedDendrites(SegregatedNetwork(sizes, dtype=torch.float64, seed=3), seed=1)
    rule.compute_updates(x, y)
    reference = update_angles(rule.net, *rule.last_phases)
    fast = compiled_update_angles(rule.net, *rule.last_phases)
    assert fast.shape == (len(sizes) - 2, 3)
    for a, b in zip(reference, fast):
        assert np.allclose(a.numpy(), b, atol=1e-6)


def test_kernel_random_is_seeded_and_uniform():
    a, b = KernelRandom(7).random(10_000, np.float32), KernelRandom(7).random(10_000, np.float32)
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.var() - 1 / 12) < 0.005
    assert not np.array_equal(a, KernelRandom(8).random(10_000, np.float32))
    with pytest.raises(ValueError, match="float32 or float64"):
        KernelRandom(0).random(3, np.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", [np.random.default_rng, KernelRandom])
def test_uniforms_are_the_same_drawn_in_pieces_or_at_once(dtype, make):
    """What lets the step-by-step and the compiled simulations share their random numbers."""
    whole = uniforms((6, 7), make(3), dtype=dtype)
    rng = make(3)
    pieces = torch.cat([uniforms((n,), rng, dtype=dtype) for n in (3, 4, 2, 5, 7, 7, 7, 7)])
    assert whole.dtype == dtype and torch.equal(whole.flatten(), pieces)
    with pytest.raises(ValueError, match="generator"):
        uniforms((2,), 7, dtype=dtype)


def test_weights_are_stored_column_by_column_and_updates_keep_it():
    net = SegregatedNetwork([20, 9, 3], seed=0)
    assert all(w.T.is_contiguous() for w in net.weights)
    x, y = toy_data(2, n_in=20)
    _, updates = SegregatedDendrites(net, seed=0).compute_updates(x[:1].float(), y[:1])
    assert all(u.stride() == w.stride() for u, w in zip(updates, net.weights))


def test_batched_update_is_the_mean_of_per_example_updates_in_rate_mode():
    x, y = toy_data(8)
    net = SegregatedNetwork([20, 9, 3], dtype=torch.float64, seed=12)
    rule = SegregatedDendrites(net, mode="rate")
    _, batch = rule.compute_updates(x, y)
    singles = [rule.compute_updates(x[i : i + 1], y[i : i + 1])[1] for i in range(8)]
    for l, u in enumerate(batch):
        assert torch.allclose(u, torch.stack([s[l] for s in singles]).mean(0), atol=1e-14)


def test_spiking_rule_is_seeded_and_carries_state_across_batch_sizes():
    x, y = toy_data(10)
    runs = []
    for _ in range(2):
        rule = SegregatedDendrites(SegregatedNetwork([20, 6, 3], seed=0), seed=5)
        first = rule.compute_updates(x[:6].float(), y[:6])[1]
        second = rule.compute_updates(x[6:].float(), y[6:])[1]  # smaller batch: rows kept
        runs.append(first + second)
        assert rule.state.soma[0].shape == (4, 6)
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    p1 = SegregatedDendrites(SegregatedNetwork([20, 6, 3], seed=0), seed=5).predict(x.float())
    assert p1.shape == (10, 3) and torch.isfinite(p1).all()


def test_paper_experiment_runs_and_writes_its_record(tmp_path):
    out = tmp_path / "record.json"
    result = run_paper_experiment("digits", hidden=(20,), epochs=1, mode="rate", n_train=200, n_test=50,
                                  out=out, progress=False)
    record = json.loads(out.read_text())
    assert record["sizes"] == [64, 20, 10] and record["learning_rates"] == [0.21, 0.21]
    assert len(record["test_error_percent"]) == 2 and record["n_train"] == 200
    assert record["paper_test_error_percent"] is None  # only MNIST has the paper's numbers
    assert result["path"] == str(out)
    assert PAPER_TEST_ERROR[(500,)] == 4.1


def test_a_resumed_run_equals_the_uninterrupted_run(tmp_path):
    """Checkpoints after every epoch: stopping after epoch 1 and resuming gives the uninterrupted run."""
    options = dict(hidden=(12,), mode="spiking", n_train=30, n_test=10, progress=False)
    whole = run_paper_experiment("digits", epochs=2, **options)
    checkpoint = tmp_path / "run.pt"
    first = run_paper_experiment("digits", epochs=1, checkpoint=checkpoint, **options)
    assert checkpoint.exists() and first["history"]["epochs"] == [0, 1]
    resumed = run_paper_experiment("digits", epochs=2, checkpoint=checkpoint, **options)
    for key in ("test_accuracy", "test_loss", "train_accuracy", "hidden_angle_0"):
        assert resumed["history"]["metrics"][key] == whole["history"]["metrics"][key], key
    assert resumed["history"]["epochs"] == [0, 1, 2] and not resumed["interrupted"]
    with pytest.raises(ValueError, match="other settings"):
        run_paper_experiment("digits", epochs=2, checkpoint=checkpoint, **(options | {"n_train": 20}))


def test_an_interrupted_run_returns_the_epochs_it_completed(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM after an epoch: the record of the epochs done, and the checkpoint to resume from."""
    import dendnotes.segregated_dendrites as sd

    def interrupted_fit(rule, data, *, after_epoch, **options):
        history = fit(rule, data, **(options | {"epochs": 1}))
        after_epoch(1, history, rule)
        raise KeyboardInterrupt

    monkeypatch.setattr(sd, "fit", interrupted_fit)
    checkpoint = tmp_path / "run.pt"
    record = run_paper_experiment("digits", hidden=(12,), epochs=5, n_train=20, n_test=10, progress=False,
                                  checkpoint=checkpoint)
    assert record["interrupted"] and record["epochs"] == 1 and len(record["test_error_percent"]) == 2
    assert checkpoint.exists()


def test_rate_feedback_and_readout_only_options():
    x, y = toy_data(3)
    net = SegregatedNetwork([20, 9, 3], dtype=torch.float64, seed=2)
    rule = SegregatedDendrites(net, seed=1, feedback_signal="rates", learning_rates=(0.0, 0.21))
    loss, updates = rule.compute_updates(x[:1], y[:1])
    forward, target = rule.last_phases
    for phase in (forward, target):  # the apical dendrites see the output rates
        assert torch.allclose(phase.apical[0], phase.output_rate @ net.feedback[0].T)
    assert float(updates[0].abs().max()) == 0 and float(updates[2].abs().max()) == 0  # hidden layer frozen
    assert float(updates[1].abs().max()) > 0
    with pytest.raises(ValueError, match="feedback_signal"):
        SegregatedDendrites(net, feedback_signal="bursts")
    steady = SegregatedDendrites(net, steady_test=True).predict(x)
    assert torch.allclose(steady, net.steady_phase(x).soma[-1])
