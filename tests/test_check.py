"""dendnotes.check accepts the book's own solutions and rejects typical mistakes."""

import ast
import math
from pathlib import Path

import nbformat
import pytest
import torch

from dendnotes import check
from dendnotes.coursework import solution_code

BOOK = Path(__file__).resolve().parents[1] / "book"


def solution_namespace(notebook: str) -> dict:
    """Run the import cell and the gated solutions of a chapter; return their names."""
    nb = nbformat.read(BOOK / notebook, as_version=4)
    namespace: dict = {}
    # The chapter's own import cell: not the install cell, nor the inserted schematic cells.
    first_code = next(c.source for c in nb.cells
                      if c.cell_type == "code" and c.get("id") != "install-dendnotes" and not c.get("id", "").startswith("h16-"))
    exec(first_code, namespace)
    for source in solution_code(nb):
        # Solutions may go on to use the chapter's variables: run only their definitions.
        tree = ast.parse(source)
        kept = (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
        tree.body = [n for n in tree.body if isinstance(n, kept)]
        exec(compile(tree, notebook, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def backprop_solutions():
    return solution_namespace("02_backprop.ipynb")


@pytest.fixture(scope="module")
def credit_solutions():
    return solution_namespace("01_credit_assignment.ipynb")


def test_softplus_reference_passes(backprop_solutions):
    verdict = check.softplus_deltas(backprop_solutions["softplus_deltas"])
    assert "match autograd" in str(verdict) and str(verdict).startswith("✓")


def wrong_derivative(net, cache, output_error):
    deltas = [output_error]
    for l in range(net.n_layers - 1, 0, -1):
        s = torch.sigmoid(cache.pre[l - 1])
        deltas.insert(0, (deltas[0] @ net.weights[l]) * s * (1 - s))
    return deltas


def not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: wrong_derivative, r"delta_1 \(network seed 0\) is wrong: at index"),
        (lambda ref: lambda *a: [-d for d in ref(*a)], "wrong sign"),
        (lambda ref: lambda *a: [d * 7 for d in ref(*a)], "constant factor of 7"),
        (lambda ref: lambda *a: [d.T for d in ref(*a)], "transposed"),
        (lambda ref: lambda *a: ref(*a)[::-1], "shape"),
        (lambda ref: lambda *a: ref(*a)[:-1], "list of 3 tensors"),
        (lambda ref: lambda *a: None, "list of 3 tensors, delta_1 first; got NoneType"),
        (lambda ref: not_implemented, "not implemented yet"),
        (lambda ref: "softplus", "expected a function"),
        (lambda ref: lambda *a: [d * float("nan") for d in ref(*a)], "NaN"),
    ],
)
def test_softplus_mistakes_are_explained(backprop_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.softplus_deltas(mistake(backprop_solutions["softplus_deltas"]))


def test_hidden_node_perturbation_reference_passes(credit_solutions):
    verdict = check.hidden_node_perturbation(credit_solutions["hidden_node_perturbation"])
    assert "unbiased" in str(verdict)


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: lambda *a: -ref(*a), "check the sign"),
        (lambda ref: lambda *a: ref(*a) * len(a[1]), "times the gradient's length"),
        (lambda ref: lambda *a: ref(*a).T, "transposed"),
        (lambda ref: lambda *a: torch.randn(6, 5, generator=a[4], dtype=torch.float64), "cosine is only"),
        (lambda ref: lambda *a: [ref(*a)], "return one tensor"),
        (lambda ref: not_implemented, "not implemented yet"),
    ],
)
def test_hidden_node_perturbation_mistakes_are_explained(credit_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.hidden_node_perturbation(mistake(credit_solutions["hidden_node_perturbation"]))


def test_verdict_renders():
    verdict = check.Verdict("ex-x", "fine")
    assert str(verdict) == repr(verdict) == "✓ ex-x: fine"
    assert verdict._repr_markdown_().startswith("**✓ ex-x**")


# --- chapter 3: feedback alignment as an autograd function ---------------------------------


@pytest.fixture(scope="module")
def fa_solutions():
    return solution_namespace("03_feedback_alignment.ipynb")


def test_random_feedback_linear_reference_passes(fa_solutions):
    verdict = check.random_feedback_linear(fa_solutions["random_feedback_linear"])
    assert str(verdict).startswith("✓") and "feedback alignment's updates" in str(verdict)


def detach_trick(h, w, b_t):
    """The solution's other way: no class, the error reaches h through b_t by a zero sum."""
    return h.detach() @ w.T + h @ b_t.T - (h @ b_t.T).detach()


def feedback_layer(backward):
    """A layer computing h @ w.T whose autograd backward is ``backward(grad, h, w, b_t)``."""

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, h, w, b_t):
            ctx.save_for_backward(h, w, b_t)
            return h @ w.T

        @staticmethod
        def backward(ctx, grad):
            return (*backward(grad, *ctx.saved_tensors), None)

    return lambda h, w, b_t: Layer.apply(h, w, b_t)


def test_random_feedback_linear_accepts_another_correct_answer():
    assert check.random_feedback_linear(detach_trick)


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda h, w, b_t: h @ w.T, "went back through w, as in backprop"),
        (feedback_layer(lambda g, h, w, b_t: (g @ w, g.T @ h)), "went back through w, as in backprop"),
        (feedback_layer(lambda g, h, w, b_t: (-(g @ b_t), g.T @ h)), "gradient for h .* wrong sign"),
        (feedback_layer(lambda g, h, w, b_t: (g @ b_t.T, g.T @ h)), "backward pass failed"),
        (feedback_layer(lambda g, h, w, b_t: (g @ b_t, h.T @ g)), r"gradient for w of shape \(4, 3\).*transposed"),
        (feedback_layer(lambda g, h, w, b_t: (g @ b_t, None)), "no gradient reaches w"),
        (feedback_layer(lambda g, h, w, b_t: (g @ b_t / len(h), g.T @ h)), "constant factor of 0.2"),
        (lambda h, w, b_t: (h @ w.T).detach(), "detached from h and w"),
        (lambda h, w, b_t: h @ b_t.T, r"the output \(case 0\) is wrong"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_random_feedback_linear_mistakes_are_explained(mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.random_feedback_linear(mistake)


# --- chapter 4: symmetric nudging by hand -------------------------------------------------


@pytest.fixture(scope="module")
def ep_solutions():
    return solution_namespace("04_equilibrium_propagation.ipynb")


def test_ep_symmetric_update_reference_passes(ep_solutions):
    verdict = check.ep_symmetric_update(ep_solutions["ep_symmetric_update"])
    assert str(verdict).startswith("✓") and "symmetric=True" in str(verdict)


def one_sided(net, x, y, beta, nudged_steps):
    free = net.relax(x)
    nudged = net.relax(x, y, beta=beta, steps=nudged_steps, init_states=free)
    return [(a - b) / beta for a, b in zip(net.energy_parameter_gradients(nudged, x),
                                           net.energy_parameter_gradients(free, x))]


def nudged_from_zero(net, x, y, beta, nudged_steps):
    plus, minus = (net.relax(x, y, beta=b, steps=nudged_steps) for b in (beta, -beta))
    return [(a - b) / (2 * beta) for a, b in zip(net.energy_parameter_gradients(plus, x),
                                                 net.energy_parameter_gradients(minus, x))]


def same_sign_twice(net, x, y, beta, nudged_steps):
    free = net.relax(x)
    plus, also_plus = (net.relax(x, y, beta=beta, steps=nudged_steps, init_states=free) for _ in range(2))
    return [(a - b) / (2 * beta) for a, b in zip(net.energy_parameter_gradients(plus, x),
                                                 net.energy_parameter_gradients(also_plus, x))]


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: one_sided, "one-sided estimate"),
        (lambda ref: nudged_from_zero, "start from zero states"),
        (lambda ref: same_sign_twice, "zero everywhere.*-beta"),
        (lambda ref: lambda *a: [-u for u in ref(*a)], "update of W_1 .* wrong sign"),
        (lambda ref: lambda *a: [2 * u for u in ref(*a)], "constant factor of 2"),
        (lambda ref: lambda *a: [u.mT if u.dim() == 2 else u for u in ref(*a)], "W_1 .* transposed"),
        (lambda ref: lambda *a: ref(*a)[:2], "list of 4 tensors"),
        (lambda ref: not_implemented, "not implemented yet"),
    ],
)
def test_ep_symmetric_update_mistakes_are_explained(ep_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.ep_symmetric_update(mistake(ep_solutions["ep_symmetric_update"]))


# --- chapter 5: the hidden layer's plateau-driven update ----------------------------------


@pytest.fixture(scope="module")
def segregated_solutions():
    return solution_namespace("05_segregated_dendrites.ipynb")


def test_plateau_weight_change_reference_passes(segregated_solutions):
    verdict = check.plateau_weight_change(segregated_solutions["plateau_weight_change"])
    assert str(verdict).startswith("✓") and "batch of six" in str(verdict)


def hidden_change(forward, target, params, eta, *, plateau=torch.sigmoid, slope_phase="forward",
                  input_phase="forward", reduce="mean", slope=True):
    """The hidden layer's weight change with one ingredient swapped for a typical mistake."""
    slope_v = (forward if slope_phase == "forward" else target).soma[0]
    inputs = (forward if input_phase == "forward" else target).inputs[0]
    difference = plateau(target.apical[0]) - plateau(forward.apical[0])
    derivative = torch.sigmoid(slope_v) * (1 - torch.sigmoid(slope_v)) if slope else 1.0
    delta = -params.k_b * difference * params.phi_max * derivative
    total = delta.T @ inputs
    return -eta * params.P_hidden * (total / len(delta) if reduce == "mean" else total)


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: lambda f, t, p, eta: hidden_change(f, t, p, eta, plateau=lambda v: v), "plateau potentials"),
        (lambda ref: lambda f, t, p, eta: hidden_change(f, t, p, eta, slope_phase="target"), "forward phase's somatic"),
        (lambda ref: lambda f, t, p, eta: hidden_change(f, t, p, eta, input_phase="target"), "phase's mean input"),
        (lambda ref: lambda f, t, p, eta: hidden_change(f, t, p, eta, slope=False), "slope sigma'.* missing"),
        (lambda ref: lambda *a: -ref(*a), "wrong sign"),
        (lambda ref: lambda *a: ref(*a) / a[2].P_hidden, r"gamma\^0 = params.P_hidden is missing"),
        (lambda ref: lambda *a: ref(*a) / a[3], "learning rate eta is missing"),
        (lambda ref: lambda f, t, p, eta: hidden_change(f, t, p, eta, reduce="sum"), "6 times too large"),
        (lambda ref: lambda *a: ref(*a).T, "transposed"),
        (lambda ref: not_implemented, "not implemented yet"),
    ],
)
def test_plateau_weight_change_mistakes_are_explained(segregated_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.plateau_weight_change(mistake(segregated_solutions["plateau_weight_change"]))


@pytest.fixture(scope="module")
def burst_solutions():
    return solution_namespace("06_bursts.ipynb")


def test_burst_plasticity_reference_passes(burst_solutions):
    assert str(check.burst_plasticity_step(burst_solutions["burst_plasticity_step"])).startswith("✓")


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: lambda pre, e, b, p, eta: eta * b[:, None] * pre[None, :], "subtract pbar"),
        (lambda ref: lambda *a: -ref(*a), "wrong sign"),
        (lambda ref: lambda *a: ref(*a).T, "transposed"),
        (lambda ref: lambda pre, e, b, p, eta: ref(pre, e, b, p, 1.0), "constant factor"),
        (lambda ref: lambda pre, e, b, p, eta: eta * (b - p * e)[:, None] * pre[None, :].roll(1, 1), "is wrong: at index"),
        (lambda ref: not_implemented, "not implemented yet"),
    ],
)
def test_burst_plasticity_mistakes_are_explained(burst_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.burst_plasticity_step(mistake(burst_solutions["burst_plasticity_step"]))


# --- the package's own implementation is refused ------------------------------------------

from dendnotes import backprop as backprop_module  # noqa: E402
from dendnotes import bursts as bursts_module  # noqa: E402
from dendnotes.backprop import backprop_gradients  # noqa: E402
from dendnotes.bursts import burst_dependent_update  # noqa: E402
from dendnotes.equilibrium_propagation import ep_updates  # noqa: E402
from dendnotes.feedback_alignment import FeedbackAlignment, update_angles  # noqa: E402
from dendnotes.segregated_dendrites import local_deltas, weight_gradients  # noqa: E402


def segregated_by_package(forward, target, params, eta):
    scales = [eta * params.P_hidden]
    return -weight_gradients(local_deltas(None, forward, target), forward, scales)[0]


def fa_layer_by_package(h, w, b_t):
    net = check.MLP([w.shape[1], w.shape[0], 2], activation="tanh", dtype=torch.float64)
    FeedbackAlignment(net).compute_updates(h.detach(), torch.zeros(len(h), dtype=torch.long))
    return h @ w.T


@pytest.mark.parametrize(
    "checker, answer, name",
    [
        (check.softplus_deltas, lambda net, cache, e: backprop_module.propagate_deltas(net, cache, e, list(net.weights)),
         "propagate_deltas"),
        (check.hidden_node_perturbation, lambda net, x, y, s, g: backprop_gradients(net, x, y)[1][0],
         "backprop_gradients"),
        (check.random_feedback_linear, fa_layer_by_package, "compute_updates"),
        (check.ep_symmetric_update,
         lambda net, x, y, beta, steps: ep_updates(net, x, y, beta=beta, symmetric=True, nudged_steps=steps)[1],
         "ep_updates"),
        (check.plateau_weight_change, segregated_by_package, "local_deltas"),
        (check.burst_plasticity_step, lambda *a: burst_dependent_update(*a), "burst_dependent_update"),
        (check.burst_plasticity_step, lambda *a: bursts_module.burst_dependent_update(*a), "burst_dependent_update"),
        (check.hidden_update_angle, lambda rule, x, y: update_angles(rule, x, y)[0], "update_angles"),
    ],
)
def test_calling_the_package_is_refused(checker, answer, name):
    with pytest.raises(check.ExerciseCheckFailed, match=f"calls the package's own `[\\w.]*{name}`"):
        checker(answer)


def test_the_block_is_lifted_afterwards():
    with pytest.raises(check.ExerciseCheckFailed):
        check.burst_plasticity_step(lambda *a: burst_dependent_update(*a))
    pre, post = torch.ones(2), torch.ones(3)
    assert burst_dependent_update(pre, post, post, post * 0.5, 1.0).shape == (3, 2)
    assert FeedbackAlignment.compute_updates.__name__ == "compute_updates"


def exact_hidden_gradient(net, x, y, sigma, generator):
    """The exact gradient written by hand (autograd): right on average, but no noise at all."""
    with torch.enable_grad():
        w = net.weights[0]
        return torch.autograd.grad(net.loss(net(x), y), w)[0]


def all_layers_perturbed(net, x, y, sigma, generator):
    """Node perturbation of every layer, written out (not the package's function)."""
    clean = net.forward_with_cache(x)
    noise = [torch.randn(a.shape, generator=generator, dtype=x.dtype) for a in clean.pre]
    plus = net.forward_with_cache(x, [sigma * xi for xi in noise])
    minus = net.forward_with_cache(x, [-sigma * xi for xi in noise])
    change = net.loss(plus.output, y, reduction="none") - net.loss(minus.output, y, reduction="none")
    return ((change / (2 * sigma * len(x))).unsqueeze(1) * noise[0]).T @ x


@pytest.mark.parametrize(
    "answer, message",
    [
        (exact_hidden_gradient, "do not vary from call to call"),
        (all_layers_perturbed, "perturb the hidden layer only"),
    ],
)
def test_node_perturbation_variance_is_checked(answer, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.hidden_node_perturbation(answer)


def test_node_perturbation_mixed_with_the_gradient_is_refused(credit_solutions):
    reference = credit_solutions["hidden_node_perturbation"]

    def half_exact(net, x, y, sigma, generator):
        return 0.5 * reference(net, x, y, sigma, generator) + 0.5 * exact_hidden_gradient(net, x, y, sigma, generator)

    with pytest.raises(check.ExerciseCheckFailed, match="mixing in the exact gradient"):
        check.hidden_node_perturbation(half_exact)


# --- chapter 6: the running burst probability ----------------------------------------------


def test_running_p_bar_reference_passes(burst_solutions):
    verdict = check.running_p_bar(burst_solutions["running_p_bar"])
    assert str(verdict).startswith("✓") and "0.2 to 0.6" in str(verdict)


def p_bar_variant(*, read_after=False, decay=None, forget=True):
    def p_bar(events, bursts, tau_avg, p_init):
        factor = (decay or (lambda tau: math.exp(-1 / tau)))(tau_avg) if forget else 1.0
        e, b, out = torch.ones(events.shape[1]), torch.full((events.shape[1],), p_init), []
        for ev, bu in zip(events, bursts):
            if not read_after:
                out.append(b / e)
            e, b = factor * e + ev, factor * b + bu
            if read_after:
                out.append(b / e)
        return torch.stack(out)

    return p_bar


@pytest.mark.parametrize(
    "answer, message",
    [
        (p_bar_variant(read_after=True), "before this step's spikes"),
        (p_bar_variant(forget=False), "never forget"),
        (p_bar_variant(decay=lambda tau: 1 - 1 / tau), "not 1 - dt/tau_avg"),
        (lambda e, b, tau, p: b / e.clamp(min=1), r"pbar \(case 0.*is wrong"),
        (lambda e, b, tau, p: p_bar_variant()(e, b, tau, p).T, "transposed"),
        (check.reference_p_bar, "calls the package's own"),  # it runs the package's traces
        (not_implemented, "not implemented yet"),
    ],
)
def test_running_p_bar_mistakes_are_explained(answer, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.running_p_bar(answer)


# --- chapter 7: the angle to backprop's update ---------------------------------------------


@pytest.fixture(scope="module")
def comparison_solutions():
    return solution_namespace("07_comparison.ipynb")


def test_hidden_update_angle_reference_passes(comparison_solutions):
    verdict = check.hidden_update_angle(comparison_solutions["hidden_update_angle"])
    assert str(verdict).startswith("✓") and "Kolen-Pollack" in str(verdict)


def angle_of(layer, unit=math.degrees):
    def angle(rule, x, y):
        _, updates = rule.compute_updates(x, y)
        _, gradients = backprop_gradients(rule.net, x, y)
        a, b = updates[layer].detach().flatten().double(), gradients[layer].flatten().double()
        return unit(math.acos(max(-1.0, min(1.0, float(a @ b / (a.norm() * b.norm()))))))

    return angle


@pytest.mark.parametrize(
    "answer, message",
    [
        (angle_of(0, unit=lambda r: r), "radians"),
        (angle_of(1), "second weight matrix"),
        (lambda rule, x, y: [angle_of(0)(rule, x, y)], "return one number"),
        (lambda rule, x, y: 45.0, r"BP: your angle is 45.00 degrees, expected 0.00"),
        (not_implemented, "not implemented yet"),
    ],
)
def test_hidden_update_angle_mistakes_are_explained(answer, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.hidden_update_angle(answer)
