import math
from dataclasses import replace

import pytest
import torch

from dendnotes.bursts import (
    FAST_XOR,
    BurstDependentPlasticity,
    DynamicSynapses,
    MicrocircuitConfig,
    BurstingPopulation,
    BurstNeuronParams,
    SpikingXOR,
    XORConfig,
    add_outer,
    burst_dependent_update,
    correlation,
    depressing_synapse,
    detect_events_and_bursts,
    exponential_filter,
    facilitating_synapse,
    one_thread,
    population_rates,
    run_xor_experiment,
    short_term_plasticity,
    simulate_microcircuit,
    simulate_population,
    smooth_random_signal,
    spike_input,
    steady_event_rate,
    xor_cost,
)


def train(times, length=200):
    spikes = torch.zeros(length, dtype=torch.bool)
    spikes[list(times)] = True
    return spikes


# ---------------------------------------------------------------------------
# event and burst detection
# ---------------------------------------------------------------------------


def test_detection_on_hand_made_train():
    # 10: event, 20: its burst, 25: third spike of the burst, 60: event, 100: event, 110: burst
    events, bursts = detect_events_and_bursts(train([10, 20, 25, 60, 100, 110]))
    assert events.nonzero().flatten().tolist() == [10, 60, 100]
    assert bursts.nonzero().flatten().tolist() == [20, 110]


def test_detection_window_edge_and_time_step():
    # 16 ms apart is still a burst, 17 ms apart is a new event
    events, bursts = detect_events_and_bursts(train([0, 16, 50, 67]))
    assert events.nonzero().flatten().tolist() == [0, 50, 67]
    assert bursts.nonzero().flatten().tolist() == [16]
    # with dt = 2 ms, steps 0 and 8 are 16 ms apart; steps 30 and 39 are 18 ms apart
    events, bursts = detect_events_and_bursts(train([0, 8, 30, 39], 50), dt=2.0)
    assert events.nonzero().flatten().tolist() == [0, 30, 39]
    assert bursts.nonzero().flatten().tolist() == [8]


def test_detection_works_per_neuron_and_on_silence():
    spikes = torch.stack([train([5, 10]), train([5, 40]), train([])], dim=1)
    events, bursts = detect_events_and_bursts(spikes)
    assert events.sum(0).tolist() == [1, 2, 0]
    assert bursts.sum(0).tolist() == [1, 0, 0]


def test_detection_rejects_bad_input():
    with pytest.raises(ValueError):
        detect_events_and_bursts(torch.zeros(0, 3))
    with pytest.raises(ValueError):
        detect_events_and_bursts(torch.zeros(10), burst_window=0)


# ---------------------------------------------------------------------------
# neurons
# ---------------------------------------------------------------------------


def test_simulated_events_and_bursts_are_recovered_from_spikes():
    for dt in (1.0, 5.0):
        params = BurstNeuronParams(dt=dt)
        n_steps = round(3000 / dt)
        spikes, events, bursts = simulate_population(torch.full((n_steps,), -1.0), torch.zeros(n_steps), 50,
                                                     params, seed=1)
        detected = detect_events_and_bursts(spikes, dt=dt, burst_window=params.burst_window)
        assert events.sum() > 100 and bursts.sum() > 50
        assert torch.equal(detected[0], events) and torch.equal(detected[1], bursts)


def test_burst_fraction_follows_dendrite_and_event_rate_follows_soma():
    n_steps = 4000
    _, events, bursts = simulate_population(torch.full((n_steps,), -2.0), torch.full((n_steps,), 1.0), 300, seed=2)
    fraction = bursts.sum() / events.sum()
    assert abs(float(fraction) - 1 / (1 + math.exp(-1.0))) < 0.03
    rate = events[200:].float().mean() * 1e3
    assert abs(float(rate) / float(steady_event_rate(-2.0)) - 1) < 0.05


def test_events_do_not_depend_on_the_dendrite():
    n_steps = 2000
    soma = torch.full((n_steps,), -1.5)
    _, events_low, bursts_low = simulate_population(soma, torch.full((n_steps,), -3.0), 40, seed=3)
    _, events_high, bursts_high = simulate_population(soma, torch.full((n_steps,), 3.0), 40, seed=3)
    assert torch.equal(events_low, events_high)
    assert bursts_high.sum() > 5 * bursts_low.sum()


def test_neuron_params_are_validated():
    with pytest.raises(ValueError):
        BurstNeuronParams(dt=0.0)
    with pytest.raises(ValueError):
        BurstNeuronParams(burst_delay_max=20.0)  # second spike outside the burst window
    with pytest.raises(ValueError):
        BurstNeuronParams(refractory=25.0)  # a new event could follow a burst within the window
    with pytest.raises(ValueError):
        BurstNeuronParams(dt=20.0)


def test_population_step_shapes():
    population = BurstingPopulation((3, 7), generator=torch.Generator().manual_seed(0))
    spikes, events, bursts = population.step(torch.zeros(3, 7), torch.zeros(3, 7))
    assert spikes.shape == events.shape == bursts.shape == (3, 7)
    assert spikes.dtype == torch.bool


# ---------------------------------------------------------------------------
# rates, readers and signals
# ---------------------------------------------------------------------------


def test_population_rates_of_regular_trains():
    # every neuron: an event every 100 ms, every second one a burst -> E = 10 Hz, B = 5 Hz, P = 1/2
    n_steps = 3000
    events = torch.zeros(n_steps, 4, dtype=torch.bool)
    bursts = torch.zeros(n_steps, 4, dtype=torch.bool)
    events[::100] = True
    bursts[10::200] = True
    e, b, p = population_rates(events, bursts, tau=300.0)
    assert abs(float(e[-1000:].mean()) - 10) < 0.5
    assert abs(float(b[-1000:].mean()) - 5) < 0.5
    assert abs(float(p[-1000:].mean()) - 0.5) < 0.05


def test_exponential_filter_has_unit_area():
    x = torch.zeros(2000)
    x[0] = 1.0
    assert abs(float(exponential_filter(x, tau=20.0).sum()) - 1) < 1e-3


def test_short_term_plasticity_prefers_first_or_later_spikes():
    burst = train([10, 20], 60).float()
    depressing, facilitating = depressing_synapse(burst), facilitating_synapse(burst)
    # the authors' parameters: a second spike 10 ms later releases about 0.41 (depressing,
    # against 0.9 at the first) and about 0.107 (facilitating, against 0.02)
    assert depressing[10] > 2 * depressing[20]
    assert facilitating[20] > 5 * facilitating[10]
    # Tsodyks-Markram by hand: a static synapse releases U at every spike
    static = short_term_plasticity(burst, U=0.3, facilitation=0.0, tau_facilitation=1.0, tau_recovery=1e-6)
    assert torch.allclose(static[[10, 20]], torch.tensor([0.3, 0.3]))
    with pytest.raises(ValueError):
        short_term_plasticity(burst, U=0.0, facilitation=0.0, tau_facilitation=1.0, tau_recovery=1.0)


def test_dynamic_synapses_step_like_short_term_plasticity():
    spikes = torch.rand(300, 3, generator=torch.Generator().manual_seed(0)) < 0.1
    for params in (dict(U=0.9, facilitation=0.1, tau_facilitation=1000.0, tau_recovery=20.0),
                   dict(U=0.02, facilitation=0.1, tau_facilitation=100.0, tau_recovery=100.0)):
        synapses = DynamicSynapses((3,), **params)
        stepped = torch.stack([synapses.release(s) for s in spikes])
        assert torch.allclose(stepped, short_term_plasticity(spikes, **params), atol=1e-6)


def test_microcircuit_sends_events_up_and_bursts_down():
    n_steps = 2500
    up = smooth_random_signal(n_steps, tau=100.0, seed=5)
    down = smooth_random_signal(n_steps, tau=100.0, seed=6)
    events, bursts = simulate_microcircuit(up, down, replace(MicrocircuitConfig(), n_per_population=200), seed=0)
    assert events.shape == bursts.shape == (n_steps, 2, 200)
    (_, _, p_lower), (e_higher, _, _) = [population_rates(events[:, k], bursts[:, k]) for k in range(2)]
    settle = slice(500, None)
    assert correlation(e_higher[settle], up[settle]) > 0.8
    assert correlation(p_lower[settle], down[settle]) > 0.5
    with pytest.raises(ValueError):
        simulate_microcircuit(up, down[:-1])


def test_smooth_random_signal_is_standardised_and_seeded():
    a, b = smooth_random_signal(3000, 50.0, seed=4), smooth_random_signal(3000, 50.0, seed=4)
    assert torch.equal(a, b)
    assert abs(float(a.mean())) < 1e-5 and abs(float(a.std()) - 1) < 1e-5
    assert correlation(a[:-1], a[1:]) > 0.99  # smooth


def test_population_multiplexes_two_signals():
    n_steps = 3000
    s1, s2 = smooth_random_signal(n_steps, 100.0, seed=1), smooth_random_signal(n_steps, 100.0, seed=2)
    s2 = s2 - (s2 @ s1) / (s1 @ s1) * s1
    _, events, bursts = simulate_population(-2.0 + 0.8 * s1, s2, 1000, seed=0)
    e, _, p = population_rates(events, bursts, tau=25.0)
    window = slice(200, None)
    assert correlation(e[window], s1[window]) > 0.9
    assert correlation(p[window], s2[window]) > 0.85
    assert abs(correlation(e[window], s2[window])) < 0.25


# ---------------------------------------------------------------------------
# burst-dependent plasticity
# ---------------------------------------------------------------------------


def test_update_sign_follows_bursts_against_expectation():
    pre = torch.tensor([[1.0, 2.0]])
    events = torch.tensor([[1.0, 1.0, 0.0]])
    bursts = torch.tensor([[1.0, 0.0, 1.0]])
    p_bar = torch.tensor([[0.3, 0.3, 0.3]])
    dw = burst_dependent_update(pre, events, bursts, p_bar, eta=0.5)
    # B - Pbar E = [0.7, -0.3, 1.0]; dW = eta (B - Pbar E) outer pre
    expected = 0.5 * torch.tensor([0.7, -0.3, 1.0])[:, None] * torch.tensor([1.0, 2.0])
    assert torch.allclose(dw, expected)
    with pytest.raises(ValueError):
        burst_dependent_update(pre, events, bursts[:, :2], p_bar, eta=1.0)


@one_thread()
def accumulated_change(dend_before: float, dend_after: float, n_steps: int = 3000, seed: int = 0):
    """Total dW per postsynaptic event, with a constant presynaptic trace of 1, when the
    dendritic drive jumps from dend_before to dend_after after an equilibration period."""
    generator = torch.Generator().manual_seed(seed)
    population = BurstingPopulation((400,), generator=generator)
    rule = BurstDependentPlasticity((), 1, 400, eta=1.0, tau_pre=100.0, tau_avg=500.0, p_init=0.5)
    pre = torch.ones(1)
    for _ in range(2000):
        _, events, bursts = population.step(-1.5, dend_before)
        rule.observe(pre * 0, events, bursts, population.since_event)
    total, n_events = torch.zeros(400), 0
    for _ in range(n_steps):
        _, events, bursts = population.step(-1.5, dend_after)
        total += burst_dependent_update(pre, events, bursts, rule.p_bar(), 1.0)[:, 0]
        rule.observe(pre * 0, events, bursts, population.since_event)
        n_events += int(events.sum())
    return float(total.sum()) / n_events


def test_potentiation_depression_and_equilibrium():
    up = accumulated_change(0.0, 1.5, n_steps=300)
    down = accumulated_change(0.0, -1.5, n_steps=300)
    still = accumulated_change(0.0, 0.0)
    assert up > 0.15 and down < -0.15
    assert abs(still) < 0.1 * min(up, -down)


@one_thread()
def test_plasticity_traces_estimate_burst_probability():
    generator = torch.Generator().manual_seed(5)
    population = BurstingPopulation((500,), generator=generator)
    rule = BurstDependentPlasticity((), 1, 500, eta=1.0, tau_pre=20.0, tau_avg=100.0, p_init=0.0)
    total, count = 0.0, 0
    for t in range(3000):
        _, events, bursts = population.step(-1.0, 0.5)
        if t > 1000:  # Pbar as the rule sees it: at the moment of each event
            total += float(rule.p_bar()[events].sum())
            count += int(events.sum())
        dw = rule.update(torch.zeros(1), events, bursts, population.since_event)
        assert dw.shape == (500, 1)
    assert abs(total / count - 1 / (1 + math.exp(-0.5))) < 0.02


# ---------------------------------------------------------------------------
# spiking XOR
# ---------------------------------------------------------------------------

SMALL = replace(FAST_XOR, n_per_population=10, trials=2, example_duration=200.0, tau_avg=50.0)


def test_xor_network_shapes_and_teacher():
    net = SpikingXOR(SMALL, seed=0)
    rates = net.run(100.0)
    assert rates.shape == (4, 5)
    drive = net.teacher_drive(torch.tensor([2.0, 2.0, 10.0, 10.0]))
    # XOR targets (0, 1, 1, 0): push up where the output is too low, down where too high
    assert drive[0] == 0 and drive[1] > 0 and drive[2] == 0 and drive[3] < 0
    assert float(drive.abs().max()) <= SMALL.teacher
    assert xor_cost(torch.tensor([2.0, 10.0, 10.0, 2.0]), SMALL) < xor_cost(torch.tensor([10.0, 2.0, 2.0, 10.0]), SMALL)


def test_teacher_reaches_hidden_layer_as_burst_probability():
    config = replace(FAST_XOR, trials=4, eta=0.0, bias_eta=0.0, homeostasis=0.0)
    net = SpikingXOR(config, seed=1)
    net.run(300.0)
    n = config.n_per_population
    _, events, bursts = net.run(150.0, teacher=torch.full((4,), 2.5), record=True)
    hidden = slice(2 * n, 4 * n)
    e = events[10:, :, hidden].float().sum(dim=(0, 1)).reshape(2, n).sum(1)
    b = bursts[10:, :, hidden].float().sum(dim=(0, 1)).reshape(2, n).sum(1)
    p_plus, p_minus = (b / e).tolist()
    # output bursts excite hidden population 1's dendrites and inhibit population 2's
    assert p_plus > 0.55 and p_minus < 0.45


def test_sparse_synapse_helpers_match_dense_products():
    generator = torch.Generator().manual_seed(0)
    spikes = (torch.rand(4, 30, generator=generator) < 0.1).float()
    post = (torch.rand(4, 7, generator=generator) < 0.2).float()
    weights = torch.randn(30, 7, generator=generator)
    assert torch.allclose(spike_input(spikes, weights), spikes @ weights)
    # two copies of the network: rows 0-1 belong to copy 0, rows 2-3 to copy 1
    copies = torch.randn(2, 30, 7, generator=generator)
    expected = torch.cat([spikes[:2] @ copies[0], spikes[2:] @ copies[1]])
    assert torch.allclose(spike_input(spikes, copies), expected)
    for sparse in ("pre", "post"):
        changed = copies.clone()
        add_outer(changed, spikes, post, 0.5, sparse=sparse)
        assert torch.allclose(changed[0], copies[0] + 0.5 * spikes[:2].T @ post[:2])
        assert torch.allclose(changed[1], copies[1] + 0.5 * spikes[2:].T @ post[2:])


def test_xor_copies_are_independent_networks():
    one = SpikingXOR(SMALL, seed=0, copies=1)
    three = SpikingXOR(SMALL, seed=0, copies=3)
    assert one.run(50.0).shape == (4, 5) and three.run(50.0).shape == (3, 4, 5)
    assert three.w1.shape == (3, 20, 20) and not torch.equal(three.w1[0], three.w1[1])
    three.example()
    assert not torch.allclose(three.w1[0] - SpikingXOR(SMALL, seed=0, copies=3).w1[0], torch.zeros(()))
    with pytest.raises(ValueError):
        three.run(10.0, teacher=torch.zeros(4))


def test_xor_experiment_runs_and_records():
    result = run_xor_experiment(config=SMALL, n_examples=8, device="cpu", progress=False)
    assert result["before"].shape == result["after"].shape == (4,)
    assert result["rates"].shape == (2, 4)
    assert len(result["costs"]) == 2
    with pytest.raises(ValueError):
        run_xor_experiment(config=SMALL, n_examples=2, progress=False)
    with pytest.raises(ValueError):
        XORConfig(rate_low=5.0, rate_high=2.0)


def test_xor_accuracy_counts_patterns_on_the_right_side():
    from dendnotes.reproduce import xor_accuracy

    config = XORConfig()
    assert xor_accuracy(torch.tensor([2.0, 10.0, 10.0, 2.0]), config) == 1.0
    assert xor_accuracy(torch.tensor([2.0, 10.0, 2.0, 10.0]), config) == 0.5


def test_compiled_xor_engine_matches_the_reference_step_by_step():
    config = replace(SMALL, trials=2, eta=0.05, homeostasis=1.0, bias_eta=1.0, params=BurstNeuronParams(dt=1.0))
    nets = [SpikingXOR(config, seed=3, copies=2, engine=engine) for engine in ("reference", "compiled")]
    rates = [[net.run(150.0), net.run(100.0, teacher=torch.full((2, 4), 2.0)), net.run(100.0)] for net in nets]
    for reference, compiled in zip(*rates):
        assert torch.equal(reference, compiled)  # the same spikes ...
    reference, compiled = nets
    assert torch.equal(reference.events, compiled.events) and torch.equal(reference.bursts, compiled.bursts)
    assert not torch.equal(reference.w1, SpikingXOR(config, seed=3, copies=2).w1)  # ... after learning
    for name in ("w1", "w2", "soma_drive"):  # and the same weights and biases, up to rounding
        assert torch.allclose(getattr(reference, name), getattr(compiled, name), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        SpikingXOR(config, engine="numba")


def test_fast_xor_engine_draws_the_same_statistics():
    # the fast engine draws its own random numbers (only at candidate steps): same rates and burst
    # probabilities as the reference's one uniform per neuron and step, and seeded
    config = replace(SMALL, n_per_population=200, trials=1, eta=0.0, homeostasis=0.0, bias_eta=0.0,
                     params=BurstNeuronParams(dt=1.0))
    found = {}
    for engine in ("reference", "fast"):
        net = SpikingXOR(config, seed=0, engine=engine)
        net.run(100.0)
        found[engine] = torch.stack([net.run(2000.0), net.run(500.0, teacher=torch.full((4,), 2.0))])
    assert torch.allclose(found["fast"], found["reference"], rtol=0.1, atol=0.3)
    again = SpikingXOR(config, seed=0, engine="fast")
    again.run(100.0)
    assert torch.equal(again.run(2000.0), found["fast"][0])
