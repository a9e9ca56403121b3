import pytest
import torch

from dendnotes.backprop import flatten, relative_error
from dendnotes.data import load
from dendnotes.equilibrium_propagation import (
    EnergyNetwork,
    EquilibriumPropagation,
    ep_updates,
    fixed_point_gradient,
    rho,
    run_paper_experiment,
)
from dendnotes.training import History, evaluate, fit

SIZES = [6, 8, 3]
STEPS = 600  # enough for the small float64 network to reach its fixed point exactly


@pytest.fixture(autouse=True)
def one_thread():
    """Relaxation is many tiny matrix products: a second thread only adds synchronisation
    (ten times slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def net():
    return EnergyNetwork(SIZES, dtype=torch.float64, seed=1)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, SIZES[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, SIZES[-1], (10,), generator=g)
    return x, y


def random_states(batch_size, low=-0.3, high=1.3, seed=2):
    g = torch.Generator().manual_seed(seed)
    return [low + (high - low) * torch.rand(batch_size, n, generator=g, dtype=torch.float64) for n in SIZES[1:]]


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(flatten(a), flatten(b), dim=0))


def test_energy_gradient_matches_autograd(net, batch):
    x, y = batch
    states = [s.requires_grad_() for s in random_states(len(x))]  # inside and outside [0, 1]
    auto = torch.autograd.grad(net.energy(states, x).sum(), states)
    explicit = net.energy_gradient([s.detach() for s in states], x)
    for a, e in zip(auto, explicit):
        assert torch.allclose(a, e, atol=1e-12)
    auto_cost = torch.autograd.grad(net.cost(states, y).sum(), states[-1])[0]
    assert torch.allclose(auto_cost, net.cost_gradient([s.detach() for s in states], y), atol=1e-12)


def test_energy_parameter_gradients_match_autograd(net, batch):
    x, _ = batch
    states = random_states(len(x))
    auto = torch.autograd.grad(net.energy(states, x).mean(), list(net.parameters()))
    explicit = net.energy_parameter_gradients(states, x)
    assert relative_error(list(auto), explicit) < 1e-12
    other = random_states(len(x), seed=5)
    difference = [a - b for a, b in zip(explicit, net.energy_parameter_gradients(other, x))]
    contrast = net.energy_parameter_contrast(states, other, x, scale=2.5)
    assert relative_error([2.5 * d for d in difference], contrast) < 1e-12


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_relaxation_step_is_clipped_descent_on_total_energy(net, batch, beta):
    x, y = batch
    states = random_states(len(x), low=0.0, high=1.0)
    after = list(net.relaxation(x, y, beta=beta, steps=1, eps=0.3, init_states=states))[-1]
    grads = net.energy_gradient(states, x)
    grads[-1] = grads[-1] + beta * net.cost_gradient(states, y)
    for s, g, new in zip(states, grads, after):
        assert torch.allclose(new, rho(s - 0.3 * g), atol=1e-12)


@torch.no_grad()
def test_free_relaxation_lowers_energy_and_reaches_fixed_point(net, batch):
    x, _ = batch
    small_steps = list(net.relaxation(x, steps=200, eps=0.2))
    energies = [float(net.energy(s, x).sum()) for s in small_steps]
    assert all(b <= a + 1e-9 for a, b in zip(energies, energies[1:]))
    assert energies[-1] < energies[0]
    trajectory = list(net.relaxation(x, steps=STEPS))
    last_change = max(float((a - b).abs().max()) for a, b in zip(trajectory[-2], trajectory[-1]))
    assert last_change < 1e-10
    # at the fixed point, s = clip(net input): the projected energy gradient vanishes
    fixed = trajectory[-1]
    for s, g in zip(fixed, net.energy_gradient(fixed, x)):
        assert torch.allclose(rho(s - g), s, atol=1e-9)


def test_nudged_phase_moves_output_towards_target(net, batch):
    x, y = batch
    free = net.relax(x, steps=STEPS)
    nudged = net.relax(x, y, beta=0.5, steps=STEPS, init_states=free)
    away = net.relax(x, y, beta=-0.5, steps=STEPS, init_states=free)
    assert net.cost(nudged, y).mean() < net.cost(free, y).mean() < net.cost(away, y).mean()


def test_fixed_point_gradient_matches_finite_differences(net, batch):
    x, y = batch
    loss, grads = fixed_point_gradient(net, x, y, steps=STEPS)
    g = torch.Generator().manual_seed(3)
    params = list(net.parameters())
    h = 1e-6
    for _ in range(3):
        direction = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(h * d)
            plus = net.cost(net.relax(x, steps=STEPS), y).mean()
            for p, d in zip(params, direction):
                p.sub_(2 * h * d)
            minus = net.cost(net.relax(x, steps=STEPS), y).mean()
            for p, d in zip(params, direction):
                p.add_(h * d)
        numeric = float(plus - minus) / (2 * h)
        analytic = float(sum((gr * d).sum() for gr, d in zip(grads, direction)))
        assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)
    assert torch.allclose(loss, net.cost(net.relax(x, steps=STEPS), y).mean())


def test_ep_update_converges_to_gradient_as_beta_shrinks(net, batch):
    """The theorem: one-sided EP has an O(beta) error, symmetric EP an O(beta^2) error."""
    x, y = batch
    _, true = fixed_point_gradient(net, x, y, steps=STEPS)
    errors = {False: [], True: []}
    for beta in (1e-3, 1e-4, 1e-5):
        for symmetric in (False, True):
            _, update = ep_updates(net, x, y, beta=beta, symmetric=symmetric, free_steps=STEPS, nudged_steps=STEPS)
            errors[symmetric].append(relative_error(update, true))
    one_sided, symmetric = errors[False], errors[True]
    assert one_sided[-1] < 1e-3 and symmetric[-1] < 1e-7, errors
    assert one_sided[0] / one_sided[-1] > 50  # about 100: first order
    assert symmetric[0] / symmetric[-1] > 5e3  # about 10,000: second order
    assert all(s < o for s, o in zip(symmetric, one_sided))


def test_ep_update_is_a_descent_direction(net, batch):
    x, y = batch
    loss, update = ep_updates(net, x, y, beta=0.1, symmetric=True, free_steps=STEPS, nudged_steps=STEPS)
    _, true = fixed_point_gradient(net, x, y, steps=STEPS)
    assert cosine(update, true) > 0.5
    with torch.no_grad():
        for p, u in zip(net.parameters(), update):
            p.sub_(0.05 * u)
        after = net.cost(net.relax(x, steps=STEPS), y).mean()
    assert after < loss


def test_random_sign_nudging_uses_both_signs_and_is_seeded(net, batch):
    x, y = batch
    plus = ep_updates(net, x, y, beta=0.5, free_steps=30)[1]
    minus = ep_updates(net, x, y, beta=-0.5, free_steps=30)[1]

    def signs(seed):
        rule = EquilibriumPropagation(net, beta=0.5, nudging="random-sign", free_steps=30, seed=seed)
        found = []
        for _ in range(12):
            update = rule.compute_updates(x, y)[1]
            is_plus = relative_error(update, plus) < 1e-12
            assert is_plus or relative_error(update, minus) < 1e-12
            found.append(is_plus)
        return found

    assert signs(0) == signs(0)
    assert 0 < sum(signs(0)) < 12


def test_layer_scales_multiply_updates(net, batch):
    x, y = batch
    base = EquilibriumPropagation(net, nudging="symmetric", free_steps=30).compute_updates(x, y)[1]
    scaled_rule = EquilibriumPropagation(net, nudging="symmetric", free_steps=30, layer_scales=(1.0, 0.5))
    scaled = scaled_rule.compute_updates(x, y)[1]
    factors = [1.0, 0.5, 1.0, 0.5]  # W_1, W_2, b_1, b_2
    for u, v, f in zip(base, scaled, factors):
        assert torch.allclose(u * f, v)
    assert scaled_rule.steps_per_update == 30 + 2 * 4
    assert EquilibriumPropagation(net, free_steps=30).steps_per_update == 34


def test_fit_trains_ep_on_digits():
    data = load("digits")
    net = EnergyNetwork([64, 32, 10], free_steps=15, seed=0)
    rule = EquilibriumPropagation(net, beta=0.5, layer_scales=(1.0, 0.5), seed=0)
    history = fit(rule, data, epochs=2, batch_size=20, lr=0.1, seed=0, progress=False)
    assert history["test_accuracy"][0] < 0.3
    assert history.final("test_accuracy") > 0.7
    assert history.final("train_loss") < 0.5 * history["train_loss"][0]
    output = rule.predict(data[2][:5])
    assert output.shape == (5, 10) and float(output.min()) >= 0 and float(output.max()) <= 1
    assert set(evaluate(rule, data[2], data[3])) == {"loss", "accuracy"}


def test_run_paper_experiment_small():
    history = run_paper_experiment("digits", hidden_sizes=(16,), epochs=1, free_steps=10, device="cpu", progress=False)
    assert isinstance(history, History)
    assert history.epochs == [0, 1]
    assert history.final("test_accuracy") > history["test_accuracy"][0]


def test_float_targets_are_accepted(net, batch):
    x, y = batch
    onehot = torch.nn.functional.one_hot(y, SIZES[-1]).double()
    free = net.relax(x, steps=20)
    assert torch.allclose(net.cost(free, y), net.cost(free, onehot))


def test_bad_input_is_rejected(net, batch):
    x, y = batch
    with pytest.raises(ValueError, match="sizes"):
        EnergyNetwork([5])
    with pytest.raises(ValueError, match="eps"):
        EnergyNetwork(SIZES, eps=1.5)
    with pytest.raises(ValueError, match="input must have shape"):
        net.relax(x[:, :3])
    with pytest.raises(ValueError, match="needs targets"):
        net.relax(x, beta=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net.relax(x, init_states=random_states(len(x)))
    with pytest.raises(ValueError, match="states must have shapes"):
        net.energy(random_states(len(x))[:1], x)
    with pytest.raises(ValueError, match="class labels"):
        net.cost(net.zero_states(x), y + 5)
    with pytest.raises(ValueError, match="beta"):
        ep_updates(net, x, y, beta=0.0)
    with pytest.raises(ValueError, match="nudging"):
        EquilibriumPropagation(net, nudging="both")
    with pytest.raises(ValueError, match="layer_scales"):
        EquilibriumPropagation(net, layer_scales=(1.0,))
    with pytest.raises(ValueError, match="learning rate per layer"):
        run_paper_experiment("digits", layer_lrs=(0.1,))
