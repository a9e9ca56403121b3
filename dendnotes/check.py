"""Checks for the book's code exercises.

Each checker takes a student's function, runs it on cases where the right answer is
known, and either returns a passing :class:`Verdict` or raises
:class:`ExerciseCheckFailed` with a message that says what is wrong: the type, the
shape (and whether it is transposed), the sign, a constant factor (a forgotten
1/N), or the first failing case. While the student's function runs, the package's own
implementation of the exercise is made to raise (:func:`package_blocked`), so that calling
it does not pass; known wrong shortcuts get their own message. In a notebook::

    from dendnotes import check
    check.softplus_deltas(softplus_deltas)
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from dataclasses import dataclass
from typing import Callable

import torch

from .backprop import flatten
from .mlp import MLP, ForwardCache


class ExerciseCheckFailed(AssertionError):
    """The exercise's answer is not right yet; the message says why."""


@dataclass
class Verdict:
    """A passed check, shown in the notebook."""

    exercise: str
    message: str

    def __str__(self) -> str:
        return f"✓ {self.exercise}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**✓ {self.exercise}**: {self.message}"

    __repr__ = __str__


def fail(exercise: str, message: str):
    # from None: the verdict replaces whatever error led to it (a stub's NotImplementedError, a blocked call).
    raise ExerciseCheckFailed(f"✗ {exercise}: {message}") from None


BLOCKED = "dendnotes.check blocked a call to"


def _blocked(*args, **kwargs):
    raise RuntimeError("dendnotes.check blocked a call to")


def _raiser_code(name: str):
    """``_blocked``'s code, with a message naming the blocked function."""
    code = _blocked.__code__
    return code.replace(co_consts=tuple(f"{BLOCKED} {name}" if c == BLOCKED else c for c in code.co_consts))


@contextlib.contextmanager
def package_blocked(*targets: tuple[object, str]):
    """While active, calling any of the package's functions ``getattr(owner, name)`` raises.

    A function's code is swapped in place, so the block also catches names the student
    imported before (``from dendnotes.bursts import burst_dependent_update``) and calls
    through decorators; methods that need a closure are replaced on their class instead.
    """
    swapped, replaced = [], []
    try:
        for owner, name in targets:
            attribute = inspect.getattr_static(owner, name)
            function = inspect.unwrap(getattr(attribute, "__func__", attribute))
            label = f"{getattr(owner, '__name__', owner)}.{name}"
            if function.__closure__ is None:
                swapped.append((function, function.__code__))
                function.__code__ = _raiser_code(label)
            else:
                replaced.append((owner, name, attribute))
                raiser = type(_blocked)(_raiser_code(label), _blocked.__globals__)
                setattr(owner, name, raiser)
        yield
    finally:
        for function, code in swapped:
            function.__code__ = code
        for owner, name, attribute in replaced:
            setattr(owner, name, attribute)


def blocked_name(error: BaseException) -> str | None:
    """The package function a blocked call reached, if ``error`` (or its cause) came from the block."""
    while error is not None:
        if BLOCKED in str(error):
            return str(error).split(BLOCKED, 1)[1].strip().split()[0].rstrip("'\".,")
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def own_code_only(exercise: str, *targets: tuple[object, str]):
    """Run the student's code with the package's implementation of the exercise blocked."""
    try:
        with package_blocked(*targets):
            yield
    except ExerciseCheckFailed:
        raise
    except Exception as error:
        name = blocked_name(error)
        if name is None:
            raise
        fail(exercise, f"your function calls the package's own `{name}`: the exercise is to write that "
             "computation yourself")


def call_student(exercise: str, function: Callable, *args, blocked: tuple[tuple[object, str], ...] = ()):
    """Call the student's function with ``blocked`` package functions made to raise, turning the
    stub's NotImplementedError and a blocked call into verdicts."""
    if not callable(function):
        fail(exercise, f"expected a function, got {type(function).__name__}")
    try:
        with own_code_only(exercise, *blocked):
            return function(*args)
    except NotImplementedError:
        fail(exercise, "not implemented yet: replace the `...` and the `raise NotImplementedError` with your code")


def compare(exercise: str, what: str, got, expected: torch.Tensor, rtol: float = 1e-6) -> None:
    """Raise a helpful ExerciseCheckFailed unless ``got`` equals ``expected`` up to ``rtol``."""
    if not isinstance(got, torch.Tensor):
        fail(exercise, f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if got.shape != expected.shape:
        hint = " (it looks transposed)" if got.dim() == 2 and got.shape == expected.T.shape else ""
        fail(exercise, f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}{hint}")
    got, expected = got.detach().double(), expected.detach().double()
    if not torch.isfinite(got).all():
        fail(exercise, f"{what} contains NaN or infinite values")
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    if error <= rtol * max(scale, 1e-12):
        return
    cosine = float(torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0))
    if cosine < -0.999:
        fail(exercise, f"{what} has the wrong sign: it points exactly opposite to the right answer")
    if cosine > 0.999 and float(expected.norm()) > 0:
        ratio = float(got.norm() / expected.norm())
        fail(exercise, f"{what} is off by a constant factor of {ratio:.4g} (a missing or extra scale, e.g. 1/N?)")
    index = tuple(int(i) for i in torch.nonzero((got - expected).abs() == error)[0])
    fail(
        exercise,
        f"{what} is wrong: at index {index} it is {float(got[index]):.6g}, expected {float(expected[index]):.6g} "
        f"(cosine with the right answer {cosine:.3f})",
    )


def softplus_network(seed: int = 0) -> tuple[MLP, ForwardCache, torch.Tensor, torch.Tensor]:
    """A float64 MLP run with softplus hidden units; returns net, cache, x and y."""
    generator = torch.Generator().manual_seed(seed)
    net = MLP([6, 5, 4, 3], activation="linear", dtype=torch.float64, seed=seed)
    x = torch.randn(7, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (7,), generator=generator)
    pre, post = [], [x]
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        a = post[-1] @ w.T + b
        pre.append(a)
        post.append(a if l == net.n_layers - 1 else torch.nn.functional.softplus(a))
    return net, ForwardCache(pre, post), x, y


def softplus_deltas(function: Callable) -> Verdict:
    """Exercise ex-backprop-softplus: errors delta_1..delta_L of a softplus network,
    written without the package's ``propagate_deltas``/``backprop_deltas``."""
    from . import backprop

    exercise = "ex-backprop-softplus"
    blocked = ((backprop, "propagate_deltas"), (backprop, "backprop_deltas"))
    for seed in range(3):
        net, cache, _, y = softplus_network(seed)
        loss = net.loss(cache.output, y)
        expected = torch.autograd.grad(loss, cache.pre)
        detached = ForwardCache([a.detach() for a in cache.pre], [h.detach() for h in cache.post])
        with torch.no_grad():
            got = call_student(exercise, function, net, detached, net.output_error(detached.output, y),
                               blocked=blocked)
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            fail(exercise, f"return a list of {len(expected)} tensors, delta_1 first; got {type(got).__name__}"
                 + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
        for l, (g, e) in enumerate(zip(got, expected), start=1):
            compare(exercise, f"delta_{l} (network seed {seed})", g, e, rtol=1e-8)
    return Verdict(exercise, "your deltas match autograd on three softplus networks")


def hidden_node_perturbation(function: Callable) -> Verdict:
    """Exercise ex-credit-layerwise: node perturbation of the hidden layer only.

    The student's ``function(net, x, y, sigma, generator)`` returns one estimate of
    dL/dW_1. Over 1,000 estimates it must average to the gradient (unbiased) *and* spread
    as node perturbation of U hidden units does: with independent noise xi_n per example,
    E||g_hat - g||^2 = (U + 1) sum_n ||x_n||^2 ||delta_1,n||^2 (delta_1,n: example n's
    hidden error). The exact gradient (no spread) and perturbing every layer (more spread)
    both fail, and so does calling the package's perturbation or backprop code.
    """
    from . import backprop, perturbation

    exercise = "ex-credit-layerwise"
    blocked = ((perturbation, "node_perturbation_gradient"), (perturbation, "weight_perturbation_gradient"),
               (backprop, "backprop_gradients"), (backprop, "backprop_deltas"), (backprop, "propagate_deltas"),
               (backprop, "autograd_gradients"))
    generator = torch.Generator().manual_seed(0)
    net = MLP([5, 6, 3], activation="tanh", dtype=torch.float64, seed=0)
    x = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=generator)
    _, gradient = backprop.backprop_gradients(net, x, y)
    cache = net.forward_with_cache(x)
    hidden_error = backprop.backprop_deltas(net, cache, net.output_error(cache.output, y))[0].detach()
    expected_variance = (hidden_error.shape[1] + 1) * float((x.pow(2).sum(1) * hidden_error.pow(2).sum(1)).sum())
    with torch.no_grad():
        sample = call_student(exercise, function, net, x, y, 1e-5, torch.Generator().manual_seed(1), blocked=blocked)
    if not isinstance(sample, torch.Tensor):
        fail(exercise, f"return one tensor, the estimate of dL/dW_1; got {type(sample).__name__}")
    if sample.shape != gradient[0].shape:
        compare(exercise, "the estimate", sample, gradient[0])
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad(), own_code_only(exercise, *blocked):
        samples = torch.stack([function(net, x, y, 1e-5, generator).double() for _ in range(1000)])
    mean = samples.mean(0)
    cosine = float(torch.nn.functional.cosine_similarity(flatten([mean]), flatten(gradient[:1]), dim=0))
    if cosine < -0.9:
        fail(exercise, f"the average estimate points away from the gradient (cosine {cosine:.2f}): check the sign")
    if cosine < 0.9:
        fail(exercise, f"1,000 averaged estimates should align with dL/dW_1, but the cosine is only {cosine:.2f}")
    ratio = float(mean.norm() / gradient[0].norm())
    if not 0.8 < ratio < 1.25:
        fail(exercise, f"the average estimate is {ratio:.3g} times the gradient's length: a missing 1/N or 1/(2 sigma)?")
    spread = float((samples - gradient[0]).pow(2).sum((1, 2)).mean()) / expected_variance
    if spread < 1e-6:
        fail(exercise, "your estimates do not vary from call to call: that is the exact gradient, not a "
             "perturbation estimate. Wiggle the hidden units with noise from `generator` and measure the loss change")
    if spread < 0.7:
        fail(exercise, f"your estimates vary {spread:.2g} times as much as node perturbation's should: "
             "are you mixing in the exact gradient, or averaging several perturbations per call?")
    if spread > 1.4:
        fail(exercise, f"your estimates vary {spread:.2g} times as much as they should when only the hidden units "
             "are wiggled: perturb the hidden layer only (zero noise for the output layer), with independent "
             "noise for each example")
    return Verdict(exercise, f"unbiased (1,000 estimates average to the gradient, cosine {cosine:.3f}), with the "
                   f"variance of node perturbation of the hidden layer ({spread:.2f} times the theory)")


def matches(got, expected: torch.Tensor, rtol: float = 1e-6) -> bool:
    """Whether ``got`` is a tensor equal to ``expected`` up to ``rtol`` (of its largest entry)."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    got, expected = got.detach().double(), expected.detach().double()
    return float((got - expected).abs().max()) <= rtol * max(float(expected.abs().max()), 1e-12)


def matches_all(got, expected: list[torch.Tensor], rtol: float = 1e-6) -> bool:
    return len(got) == len(expected) and all(matches(g, e, rtol) for g, e in zip(got, expected))


def check_list(exercise: str, got, length: int, what: str) -> None:
    if not isinstance(got, (list, tuple)) or len(got) != length:
        fail(exercise, f"return a list of {length} tensors, {what}; got {type(got).__name__}"
             + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))


def backward_failure(error: str) -> str:
    """Explain a RuntimeError from the backward pass of ``random_feedback_linear``'s layer."""
    shapes = re.search(
        r"invalid gradient at index (\d) - got \[(.*?)\] but expected shape compatible with \[(.*?)\]", error
    )
    if shapes and int(shapes.group(1)) < 3:
        name = ("h", "w", "b_t")[int(shapes.group(1))]
        got, expected = shapes.group(2).split(", "), shapes.group(3).split(", ")
        hint = " (it looks transposed)" if got == expected[::-1] else ""
        return (f"the backward pass returns a gradient for {name} of shape ({shapes.group(2)}), "
                f"expected ({shapes.group(3)}){hint}")
    return f"the backward pass failed ({error.splitlines()[0]}); b_t has the shape of w: (n_out, n_in)"


def random_feedback_linear(function: Callable) -> Verdict:
    """Exercise ex-fa-autograd: ``function(h, w, b_t)`` computes h W^T, and autograd sends
    the error to h through b_t (feedback alignment's B = b_t^T) instead of w, while w
    keeps its gradient grad^T h. Checked on single layers, then in a tanh MLP against
    ``FeedbackAlignment.compute_updates``."""
    from .feedback_alignment import DirectFeedbackAlignment, FeedbackAlignment, FeedbackRule
    from .mlp import activation_function

    exercise = "ex-fa-autograd"
    blocked = ((FeedbackRule, "deltas"), (FeedbackRule, "compute_updates"),
               (DirectFeedbackAlignment, "compute_updates"))
    generator = torch.Generator().manual_seed(0)

    def draw(*shape, grad=False):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(grad)

    for case, (n, n_in, n_out) in enumerate(((5, 4, 3), (7, 6, 2))):
        h, w = draw(n, n_in, grad=True), draw(n_out, n_in, grad=True)
        b_t, upstream = draw(n_out, n_in), draw(n, n_out)
        out = call_student(exercise, function, h, w, b_t, blocked=blocked)
        compare(exercise, f"the output (case {case})", out, h.detach() @ w.detach().T, rtol=1e-10)
        if out.grad_fn is None:
            fail(exercise, "the output is detached from h and w, so no error can flow back: "
                 "build it with a torch.autograd.Function (or differentiable operations)")
        try:
            with own_code_only(exercise, *blocked):
                out.backward(upstream)
        except RuntimeError as error:
            fail(exercise, backward_failure(str(error)))
        if h.grad is None:
            fail(exercise, "no gradient reaches h: the backward pass must send the error down, through b_t")
        if matches(h.grad, upstream @ w.detach(), rtol=1e-10):
            fail(exercise, "the error reaching h went back through w, as in backprop: "
                 "feedback alignment sends it through the fixed matrix b_t instead")
        compare(exercise, f"the gradient for h (case {case})", h.grad, upstream @ b_t, rtol=1e-10)
        if w.grad is None:
            fail(exercise, "no gradient reaches w: its update stays the local grad.T @ h")
        compare(exercise, f"the gradient for w (case {case})", w.grad, upstream.T @ h.detach(), rtol=1e-10)

    net = MLP([6, 5, 4, 3], activation="tanh", dtype=torch.float64, seed=0)
    rule = FeedbackAlignment(net, seed=1)
    x, y = draw(9, 6), torch.randint(0, 3, (9,), generator=generator)
    _, updates = rule.compute_updates(x, y)
    h = x
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        a = (h @ w.T if l == 0 else call_student(exercise, function, h, w, rule.feedback[l - 1], blocked=blocked)) + b
        h = a if l == net.n_layers - 1 else activation_function(net.activation, a)
    with own_code_only(exercise, *blocked):
        gradients = torch.autograd.grad(net.loss(a, y), list(net.parameters()))
    for l, (g, u) in enumerate(zip(gradients[: net.n_layers], updates), start=1):
        compare(exercise, f"dW_{l} of a 6-5-4-3 network", g, u, rtol=1e-10)
    return Verdict(exercise, "autograd through your layer gives feedback alignment's updates, "
                   "in single layers and in a two-hidden-layer network")


def ep_symmetric_update(function: Callable) -> Verdict:
    """Exercise ex-ep-symmetric: ``function(net, x, y, beta, nudged_steps)`` returns the
    symmetric EP estimate (1/2beta)[dE/dtheta(s^+beta) - dE/dtheta(s^-beta)] in the order of
    ``net.parameters()``, both nudged phases starting at the free fixed point of
    ``net.relax(x)``. Compared with ``ep_updates(..., symmetric=True)``."""
    from . import equilibrium_propagation
    from .equilibrium_propagation import EnergyNetwork, EquilibriumPropagation, ep_updates

    exercise = "ex-ep-symmetric"
    blocked = ((equilibrium_propagation, "ep_updates"), (equilibrium_propagation, "fixed_point_gradient"),
               (EquilibriumPropagation, "compute_updates"))
    for case, (seed, beta, steps) in enumerate(((0, 0.5, 4), (2, 0.01, 25))):
        generator = torch.Generator().manual_seed(seed)
        net = EnergyNetwork([8, 6, 4], free_steps=30, dtype=torch.float64, seed=seed)
        x = torch.rand(8, 8, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 4, (8,), generator=generator)
        names = [f"W_{l}" for l in range(1, 3)] + [f"b_{l}" for l in range(1, 3)]
        with torch.no_grad():
            _, expected = ep_updates(net, x, y, beta=beta, symmetric=True, nudged_steps=steps)
            got = call_student(exercise, function, net, x, y, beta, steps, blocked=blocked)
            check_list(exercise, got, len(expected), "the updates of W_1, W_2, b_1, b_2 (net.parameters() order)")
            if matches_all(got, expected, rtol=1e-7):
                continue
            _, one_sided = ep_updates(net, x, y, beta=beta, nudged_steps=steps)
            if matches_all(got, one_sided, rtol=1e-7):
                fail(exercise, "this is the one-sided estimate, (1/beta)[dE/dtheta(s^beta) - dE/dtheta(s^0)]: "
                     "contrast a phase nudged by +beta with one nudged by -beta, and divide by 2 beta")
            from_zero = [net.relax(x, y, beta=b, steps=steps) for b in (beta, -beta)]
            if matches_all(got, net.energy_parameter_contrast(*from_zero, x, scale=1 / (2 * beta)), rtol=1e-7):
                fail(exercise, "your nudged phases start from zero states: start both at the free fixed point "
                     "(init_states=the free phase's states), so that they differ from it only by the nudge")
        if all(isinstance(g, torch.Tensor) and not g.abs().any() for g in got):
            fail(exercise, "your estimate is zero everywhere: are both nudged phases nudged the same way? "
                 "The second one needs -beta")
        for name, g, e in zip(names, got, expected):
            compare(exercise, f"the update of {name} (case {case}: beta = {beta})", g, e, rtol=1e-7)
    return Verdict(exercise, "your symmetric estimate equals ep_updates(..., symmetric=True) at beta = 0.5 and 0.01")


def plateau_weight_change(function: Callable) -> Verdict:
    """Exercise ex-segregated-hidden-update: ``function(forward, target, params, eta)`` returns
    the hidden layer's weight change -eta gamma^0 dL^0/dW^0, averaged over the batch, with
    dL^0/dW^0 = -k_b (alpha^t - alpha^f) phi_max sigma'(V^0_f) s_f^T and alpha = sigma(apical).
    Compared with ``local_deltas`` and ``weight_gradients`` on spiking phases of small networks."""
    from . import segregated_dendrites
    from .segregated_dendrites import SegregatedDendrites, SegregatedNetwork, local_deltas, weight_gradients

    exercise = "ex-segregated-hidden-update"
    blocked = tuple((segregated_dendrites, name) for name in ("local_deltas", "weight_gradients", "backprop_deltas")) + (
        (SegregatedDendrites, "compute_updates"),)
    for case, (batch, eta) in enumerate(((1, 0.21), (6, 0.3))):
        generator = torch.Generator().manual_seed(case)
        net = SegregatedNetwork([12, 7, 4], dtype=torch.float64, seed=case)
        rule = SegregatedDendrites(net, mode="spiking", learning_rates=(eta, 0.21), seed=case, stepwise=True)
        x = torch.rand(batch, 12, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 4, (batch,), generator=generator)
        forward, target = rule.phases(x, y)
        p = net.params
        expected = -weight_gradients(local_deltas(net, forward, target), forward, rule.scales())[0]
        with torch.no_grad():
            got = call_student(exercise, function, forward, target, p, eta, blocked=blocked)
        if matches(got, expected, rtol=1e-8):
            continue

        def change(difference, slope, inputs):
            return -eta * p.P_hidden * (-p.k_b * difference * p.phi_max * slope).T @ inputs / batch

        def sigmoid_slope(v):
            return torch.sigmoid(v) * (1 - torch.sigmoid(v))

        alpha_f, alpha_t = torch.sigmoid(forward.apical[0]), torch.sigmoid(target.apical[0])
        mistakes = {
            "use the plateau potentials alpha = sigmoid(mean apical voltage), not the apical voltages themselves":
                change(target.apical[0] - forward.apical[0], sigmoid_slope(forward.soma[0]), forward.inputs[0]),
            "the slope sigma'(V) belongs to the forward phase's somatic voltage, forward.soma[0]":
                change(alpha_t - alpha_f, sigmoid_slope(target.soma[0]), forward.inputs[0]),
            "the presynaptic factor is the forward phase's mean input, forward.inputs[0]":
                change(alpha_t - alpha_f, sigmoid_slope(forward.soma[0]), target.inputs[0]),
            "the slope sigma'(V^0_f) of the rate function is missing":
                change(alpha_t - alpha_f, 1.0, forward.inputs[0]),
        }
        for message, wrong in mistakes.items():
            if matches(got, wrong, rtol=1e-8):
                fail(exercise, message)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and float(got.norm()) > 0:
            got64 = got.detach().double()
            ratio = float(got64.norm() / expected.norm())
            cosine = float(torch.nn.functional.cosine_similarity(got64.flatten(), expected.flatten(), dim=0))
            factors = {"the learning rate eta": eta, "the scale factor gamma^0 = params.P_hidden": p.P_hidden,
                       "k_b": p.k_b, "phi_max": p.phi_max}
            if cosine < -0.999:
                fail(exercise, "the weight change has the wrong sign: return the change -eta gamma^0 dL^0/dW^0, "
                     "not the gradient, with the plateau difference alpha^t - alpha^f")
            if batch > 1 and cosine > 0.999 and abs(ratio / batch - 1) < 1e-6:
                fail(exercise, f"{batch} times too large: average the examples' changes over the batch, don't sum them")
            for name, factor in factors.items():
                if cosine > 0.999 and abs(ratio * factor - 1) < 1e-6:
                    fail(exercise, f"off by a factor of {ratio:.4g}: {name} is missing")
        compare(exercise, f"the weight change (case {case}: batch of {batch})", got, expected, rtol=1e-8)
    return Verdict(exercise, "your weight change matches the package's rule on spiking phases, for one example "
                   "and for a batch of six")


def burst_plasticity_step(function: Callable) -> Verdict:
    """Exercise ex-bursts-rule: one step of dW_ij = eta [B_i - pbar_i E_i] Etilde_j (Payeur et al. 2021).

    The student's ``function(pre_trace, post_events, post_bursts, p_bar, eta)`` gets one time
    step's tensors, pre_trace (n_pre,) and the others (n_post,), and returns dW (n_post, n_pre).
    """
    from . import bursts as module
    from .bursts import BurstDependentPlasticity, burst_dependent_update

    exercise = "ex-bursts-rule"
    blocked = ((module, "burst_dependent_update"), (BurstDependentPlasticity, "update"))
    generator = torch.Generator().manual_seed(0)
    for case in range(4):
        n_pre, n_post = 5 + case, 3 + case
        pre = torch.rand(n_pre, generator=generator)
        events = (torch.rand(n_post, generator=generator) < 0.6).float()
        bursts = events * (torch.rand(n_post, generator=generator) < 0.4).float()
        p_bar = torch.rand(n_post, generator=generator) * 0.5
        eta = 0.01 * (case + 1)
        expected = burst_dependent_update(pre, events, bursts, p_bar, eta)
        got = call_student(exercise, function, pre, events, bursts, p_bar, eta, blocked=blocked)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            no_depression = burst_dependent_update(pre, events, bursts, torch.zeros_like(p_bar), eta)
            if torch.allclose(got.float(), no_depression) and not torch.allclose(expected, no_depression):
                fail(exercise, "only bursts change the weight: subtract pbar * E, the depression on every event")
        compare(exercise, f"dW (case {case + 1}: {n_post} post, {n_pre} pre neurons)", got, expected, rtol=1e-5)
    return Verdict(exercise, "your update matches burst_dependent_update on four random time steps")


def spike_trains(seed: int, n_steps: int = 600, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Event and burst trains (n_steps, n) whose burst probability steps from 0.2 to 0.6 halfway."""
    generator = torch.Generator().manual_seed(seed)
    events = (torch.rand(n_steps, n, generator=generator) < 0.05).float()
    probability = torch.where(torch.arange(n_steps) < n_steps // 2, 0.2, 0.6).unsqueeze(1)
    bursts = events * (torch.rand(n_steps, n, generator=generator) < probability).float()
    return events, bursts


def reference_p_bar(events: torch.Tensor, bursts: torch.Tensor, tau_avg: float, p_init: float) -> torch.Tensor:
    """pbar at every step from the package's traces (one expected event to start with)."""
    from .bursts import BurstDependentPlasticity

    traces = BurstDependentPlasticity((), 1, events.shape[1], eta=0.0, tau_pre=1.0, tau_avg=tau_avg,
                                      p_init=p_init, rate_init=1000.0 / tau_avg)
    p_bar = []
    for e, b in zip(events, bursts):
        p_bar.append(traces.p_bar().clone())
        traces.observe(torch.zeros(1), e, b)
    return torch.stack(p_bar)


def running_p_bar(function: Callable) -> Verdict:
    """Exercise ex-bursts-pbar: ``function(post_events, post_bursts, tau_avg, p_init)`` gets
    (T, n) event and burst trains (1-ms steps, each burst counted at its event) and returns
    the running burst probability pbar (T, n) of Payeur et al. (2021): the ratio of two
    exponential traces (time constant tau_avg) of bursts and of events, both starting at one
    expected event (burst trace p_init, event trace 1), read *before* each step's spikes enter.
    Compared with ``BurstDependentPlasticity``'s traces, which are blocked meanwhile.
    """
    from . import bursts as module
    from .bursts import BurstDependentPlasticity, ExponentialTrace

    exercise = "ex-bursts-pbar"
    blocked = ((BurstDependentPlasticity, "p_bar"), (BurstDependentPlasticity, "observe"),
               (BurstDependentPlasticity, "update"), (ExponentialTrace, "update"),
               (module, "burst_dependent_update"))
    for case, (tau_avg, p_init) in enumerate(((50.0, 0.2), (200.0, 0.5))):
        events, bursts = spike_trains(case)
        expected = reference_p_bar(events, bursts, tau_avg, p_init)
        got = call_student(exercise, function, events.clone(), bursts.clone(), tau_avg, p_init, blocked=blocked)
        if matches(got, expected, rtol=1e-4):
            continue
        decay = math.exp(-1.0 / tau_avg)
        e_trace, b_trace = torch.ones(events.shape[1]), torch.full((events.shape[1],), p_init)
        after, no_decay, euler = [], [], []
        e_sum, b_sum, e_euler, b_euler = e_trace.clone(), b_trace.clone(), e_trace.clone(), b_trace.clone()
        for e, b in zip(events, bursts):
            e_trace, b_trace = decay * e_trace + e, decay * b_trace + b
            after.append(b_trace / e_trace)
            no_decay.append(b_sum / e_sum)
            e_sum, b_sum = e_sum + e, b_sum + b
            euler.append(b_euler / e_euler)
            e_euler, b_euler = (1 - 1 / tau_avg) * e_euler + e, (1 - 1 / tau_avg) * b_euler + b
        mistakes = {
            "read pbar before this step's spikes enter the traces: at step t the rule weighs an event "
            "against the bursts seen so far": torch.stack(after),
            "the traces never forget: multiply both by exp(-dt/tau_avg) every step": torch.stack(no_decay),
            "decay the traces by exp(-dt/tau_avg), the exact decay of an exponential trace over one step, "
            "not 1 - dt/tau_avg": torch.stack(euler),
        }
        for message, wrong in mistakes.items():
            if matches(got, wrong, rtol=1e-4):
                fail(exercise, message)
        compare(exercise, f"pbar (case {case}: tau_avg = {tau_avg:g} ms, p_init = {p_init})", got, expected,
                rtol=1e-4)
    return Verdict(exercise, "your running burst probability matches the package's traces, and follows the burst "
                   "probability when it jumps from 0.2 to 0.6")


def hidden_update_angle(function: Callable) -> Verdict:
    """Exercise ex-compare-angle: ``function(rule, x, y)`` returns the angle in degrees between
    the rule's update of the first weight matrix, ``rule.compute_updates(x, y)[1][0]``, and
    backprop's dL/dW_1 on the same batch. Compared with ``feedback_alignment.update_angles``
    (blocked meanwhile, with the other angle helpers) for BP, FA, DFA, SS and KP.
    """
    from . import burstprop, feedback_alignment
    from .feedback_alignment import make_rule, update_angles

    exercise = "ex-compare-angle"
    blocked = ((feedback_alignment, "update_angles"), (feedback_alignment, "angle_between"),
               (feedback_alignment, "weight_feedback_angles"), (burstprop, "hidden_update_angles"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (16,), generator=generator)
    for name in ("BP", "FA", "DFA", "SS", "KP"):
        net = MLP([8, 7, 6, 4], activation="tanh", dtype=torch.float64, seed=3)
        rule = make_rule(name, net, seed=1)
        expected = update_angles(rule, x, y)
        got = call_student(exercise, function, rule, x, y, blocked=blocked)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = float(got)
        if not isinstance(got, (int, float)):
            fail(exercise, f"return one number, the angle in degrees; got {type(got).__name__}")
        if abs(got - expected[0]) <= 1e-3:
            continue
        if abs(math.degrees(got) - expected[0]) <= 1e-3:
            fail(exercise, f"{name}: your angle is in radians; return degrees (math.degrees)")
        if abs(got - (180 - expected[0])) <= 1e-3:
            fail(exercise, f"{name}: your angle is 180 degrees minus the right one: compare the rule's update with "
                 "the gradient itself, both as returned (the rules return descent directions of the same sign)")
        if abs(got - expected[1]) <= 1e-3:
            fail(exercise, f"{name}: that is the angle of the second weight matrix; the exercise asks for W_1's")
        fail(exercise, f"{name}: your angle is {got:.2f} degrees, expected {expected[0]:.2f} "
             "(flatten both matrices, cosine = a.b / (|a| |b|), then arccos in degrees)")
    return Verdict(exercise, "your angles match for backprop (0 degrees), FA, DFA, sign symmetry and Kolen-Pollack")
