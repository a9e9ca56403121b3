"""Equilibrium propagation: learning from two equilibria of one energy (Scellier & Bengio 2017).

A layered Hopfield-like network holds states s_1..s_L (s_0 = x is clamped; s_L is the
output) and has, with rho(s) = clip(s, 0, 1) and W_l of shape (n_l, n_{l-1}),

    E(s) = 1/2 sum_l ||s_l||^2 - sum_l b_l . rho(s_l) - sum_l rho(s_l)^T W_l rho(s_{l-1}),
    C(s) = ||s_L - t||^2                     (t: one-hot target; the authors' code, no 1/2),
    F = E + beta C.

Relaxation lowers F: every layer at once takes s_l <- clip(s_l - eps dF/ds_l, 0, 1).
The free phase (beta = 0) settles at s^0, the prediction; the nudged phase starts there
and settles at s^beta, pulled a little towards the target. With L = C(s^0),

    dL/dtheta = lim_{beta -> 0} (1/beta) [dE/dtheta(s^beta) - dE/dtheta(s^0)],
    dE/dW_l = -rho(s_l) rho(s_{l-1})^T,       dE/db_l = -rho(s_l),

so the update dW_l ~ (1/beta)[rho(s_l^beta) rho(s_{l-1}^beta)^T - rho(s_l^0) rho(s_{l-1}^0)^T]
is a difference of two Hebbian terms, local to each synapse. One-sided nudging
(+beta, or a random sign per batch as in the authors' code) has an O(beta) bias;
symmetric nudging (+beta and -beta phases, Laborieux et al. 2021) has an O(beta^2) one.

Unlike the authors' code, states are not persisted per example between epochs: every
free phase starts from zero (``run_paper_experiment`` uses 40 free steps for the paper's 20).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from .data import load
from .mlp import reduce_loss
from .training import History, LearningRule, choose_device, fit

NUDGINGS = ("positive", "random-sign", "symmetric")


def rho(s: torch.Tensor) -> torch.Tensor:
    """The hard sigmoid rho(s) = clip(s, 0, 1)."""
    return s.clamp(0.0, 1.0)


class EnergyNetwork(torch.nn.Module):
    """Layered energy-based network with sizes [n_0 (input), n_1, ..., n_L (output)].

    Weights start Glorot-uniform in +-sqrt(6 / (n_in + n_out)) as in the authors' code,
    biases at zero. ``eps`` and ``free_steps`` set the relaxation that ``forward`` (the
    prediction) runs from all-zero states.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        eps: float = 0.5,
        free_steps: int = 40,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
        check_relaxation_args(eps, free_steps)
        self.sizes = [int(n) for n in sizes]
        self.eps = float(eps)
        self.free_steps = int(free_steps)
        generator = torch.Generator().manual_seed(seed)
        weights, biases = [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            r = (6.0 / (n_in + n_out)) ** 0.5
            w = (torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * r
            weights.append(torch.nn.Parameter(w.to(dtype)))
            biases.append(torch.nn.Parameter(torch.zeros(n_out, dtype=dtype)))
        self.weights = torch.nn.ParameterList(weights)
        self.biases = torch.nn.ParameterList(biases)

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"input must have shape (batch, {self.sizes[0]}), got {tuple(x.shape)}")

    def check_states(self, states: Sequence[torch.Tensor], batch: int) -> None:
        shapes = [tuple(s.shape) for s in states]
        expected = [(batch, n) for n in self.sizes[1:]]
        if shapes != expected:
            raise ValueError(f"states must have shapes {expected} (layers 1..L), got {shapes}")

    def zero_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All-zero states s_1..s_L for the batch x: where every relaxation starts by default."""
        return [torch.zeros(len(x), n, dtype=x.dtype, device=x.device) for n in self.sizes[1:]]

    def targets(self, y: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """One-hot targets for int64 class labels; float targets of the output's shape pass through."""
        if y.shape[0] != output.shape[0]:
            raise ValueError(f"{output.shape[0]} outputs but {y.shape[0]} targets")
        if y.dtype == torch.int64:
            if y.dim() != 1 or y.min() < 0 or y.max() >= output.shape[1]:
                raise ValueError(f"class labels must be int64 of shape (batch,) in [0, {output.shape[1] - 1}]")
            return torch.nn.functional.one_hot(y, output.shape[1]).to(output.dtype)
        if y.shape != output.shape:
            raise ValueError(f"targets must be class labels or have shape {tuple(output.shape)}, got {tuple(y.shape)}")
        return y.to(output.dtype)

    def energy(self, states: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """E(s) per example, shape (batch,)."""
        self.check_input(x)
        self.check_states(states, len(x))
        below = [rho(x)] + [rho(s) for s in states[:-1]]
        e = 0.0
        for s, r_below, w, b in zip(states, below, self.weights, self.biases):
            r = rho(s)
            e = e + 0.5 * (s * s).sum(1) - r @ b - ((r_below @ w.T) * r).sum(1)
        return e

    def cost(self, states: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """C(s) = ||s_L - t||^2 per example, shape (batch,)."""
        return self.loss(states[-1], y, reduction="none")

    def loss(self, output: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The cost ||output - t||^2 of an output state, per example or averaged."""
        per_example = ((output - self.targets(y, output)) ** 2).sum(1)
        return reduce_loss(per_example, reduction)

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """W_1 rho(x) + b_1: the first layer's input, constant while x is clamped."""
        self.check_input(x)
        return rho(x) @ self.weights[0].T + self.biases[0]

    def energy_gradient(self, states: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """dE/ds_l = s_l - rho'(s_l) (W_l rho(s_{l-1}) + b_l + W_{l+1}^T rho(s_{l+1})), per example,
        with rho'(s) = 1 on [0, 1] (ends included, as autograd through torch.clamp), else 0."""
        self.check_states(states, len(x))
        rates = [rho(s) for s in states]
        inputs = net_inputs(rates, self.input_drive(x), list(self.weights), list(self.biases))
        return [s - torch.where((s >= 0) & (s <= 1), u, 0.0) for s, u in zip(states, inputs)]

    def cost_gradient(self, states: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """dC/ds_L = 2 (s_L - t); C does not depend on the other layers."""
        return 2 * (states[-1] - self.targets(y, states[-1]))

    def relaxation(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        beta: float = 0.0,
        steps: int | None = None,
        eps: float | None = None,
        init_states: Sequence[torch.Tensor] | None = None,
        input_drive: torch.Tensor | None = None,
    ) -> Iterator[list[torch.Tensor]]:
        """Yield the states before the first step and after each of ``steps`` steps of
        s_l <- clip(s_l - eps dF/ds_l, 0, 1), F = E + beta C, all layers updated together.

        States stay in [0, 1], where rho(s) = s and rho'(s) = 1, so a step reads
        s_l <- clip((1 - eps) s_l + eps u_l, 0, 1) with u_l the unit's net input
        (``net_inputs``), minus 2 beta (s_L - t) at the output: a leaky integrator.
        ``init_states`` (default: zeros) must lie in [0, 1]. ``input_drive`` may pass
        ``self.input_drive(x)`` in, to share it between the phases of one example.
        Autograd records every step unless called under ``torch.no_grad()``.
        """
        steps = self.free_steps if steps is None else steps
        eps = self.eps if eps is None else eps
        check_relaxation_args(eps, steps)
        if beta != 0 and y is None:
            raise ValueError("a nudged relaxation (beta != 0) needs targets y")
        states = self.zero_states(x) if init_states is None else list(init_states)
        self.check_states(states, len(x))
        if any(bool(((s < 0) | (s > 1)).any()) for s in states):
            raise ValueError("initial states must lie in [0, 1]")
        drive = self.input_drive(x) if input_drive is None else input_drive
        target = None if y is None else self.targets(y, states[-1])
        weights, biases = list(self.weights), list(self.biases)
        yield states
        for _ in range(steps):
            inputs = net_inputs(states, drive, weights, biases)
            if beta != 0:
                inputs[-1] = inputs[-1] - 2 * beta * (states[-1] - target)
            states = [s.lerp(u, eps).clamp(0.0, 1.0) for s, u in zip(states, inputs)]
            yield states

    def relax(self, x, y=None, *, beta=0.0, steps=None, eps=None, init_states=None, input_drive=None):
        """The states after the relaxation (see ``relaxation``); beta = 0 is the free phase."""
        for states in self.relaxation(
            x, y, beta=beta, steps=steps, eps=eps, init_states=init_states, input_drive=input_drive
        ):
            pass
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction: the output state s_L after a free phase from zero states."""
        return self.relax(x)[-1]

    def energy_parameter_gradients(self, states: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """Batch means of dE/dW_l = -rho(s_l) rho(s_{l-1})^T and dE/db_l = -rho(s_l),
        in the order of ``parameters()`` (all weights, then all biases)."""
        self.check_states(states, len(x))
        rates = [rho(x)] + [rho(s) for s in states]
        n = len(x)
        d_weights = [-(post.T @ pre) / n for pre, post in zip(rates[:-1], rates[1:])]
        d_biases = [-post.mean(0) for post in rates[1:]]
        return d_weights + d_biases

    def energy_parameter_contrast(self, states_a, states_b, x: torch.Tensor, scale: float = 1.0) -> list[torch.Tensor]:
        """scale * [dE/dtheta(a) - dE/dtheta(b)] (batch means, ``parameters()`` order).

        Same as the difference of two ``energy_parameter_gradients``, computed with the
        scale folded into the small rate factors and one product for the first layer,
        whose input x is the same in a and b: -(rho(a_1) - rho(b_1))^T rho(x) / n.
        """
        self.check_states(states_a, len(x))
        self.check_states(states_b, len(x))
        c = -scale / len(x)
        rates_a, rates_b = [rho(s) for s in states_a], [rho(s) for s in states_b]
        d_weights = [((rates_a[0] - rates_b[0]) * c).T @ rho(x)]
        for l in range(1, self.n_layers):
            a_term = (rates_a[l] * c).T @ rates_a[l - 1]
            d_weights.append(torch.addmm(a_term, (rates_b[l] * c).T, rates_b[l - 1], alpha=-1))
        d_biases = [(a - b).sum(0) * c for a, b in zip(rates_a, rates_b)]
        return d_weights + d_biases


def net_inputs(rates, input_drive, weights, biases) -> list[torch.Tensor]:
    """u_l = W_l r_{l-1} + b_l + W_{l+1}^T r_{l+1} for the firing rates r_l = rho(s_l) of
    layers 1..L, with u_1's bottom-up part given as ``input_drive`` = W_1 rho(x) + b_1."""
    inputs = []
    for l, r in enumerate(rates):
        u = input_drive if l == 0 else torch.addmm(biases[l], rates[l - 1], weights[l].T)
        if l + 1 < len(rates):
            u = torch.addmm(u, rates[l + 1], weights[l + 1])
        inputs.append(u)
    return inputs


def check_relaxation_args(eps: float, steps: int) -> None:
    if not 0 < eps <= 1:
        raise ValueError(f"eps must lie in (0, 1], got {eps}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps}")


def check_beta(beta: float) -> None:
    if not (math.isfinite(beta) and beta != 0):
        raise ValueError(f"beta must be finite and non-zero, got {beta}")


@torch.no_grad()
def ep_updates(
    net: EnergyNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    beta: float,
    symmetric: bool = False,
    free_steps: int | None = None,
    nudged_steps: int = 4,
    eps: float | None = None,
    free_states: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss C(s^0) (batch mean) and EP's estimate of dC(s^0)/dtheta, aligned with
    ``net.parameters()``:

        one-sided:  (1/beta)  [dE/dtheta(s^beta) - dE/dtheta(s^0)]
        symmetric:  (1/2beta) [dE/dtheta(s^+beta) - dE/dtheta(s^-beta)]

    Nudged phases start at the free fixed point s^0, which is computed here from zero
    states unless ``free_states`` gives it. A negative beta nudges away from the target.
    """
    check_beta(beta)
    drive = net.input_drive(x)
    if free_states is None:
        free = net.relax(x, steps=free_steps, eps=eps, input_drive=drive)
    else:
        free = list(free_states)
    loss = net.cost(free, y).mean()

    def nudged(b: float) -> list[torch.Tensor]:
        return net.relax(x, y, beta=b, steps=nudged_steps, eps=eps, init_states=free, input_drive=drive)

    if symmetric:
        return loss, net.energy_parameter_contrast(nudged(beta), nudged(-beta), x, scale=1 / (2 * beta))
    return loss, net.energy_parameter_contrast(nudged(beta), free, x, scale=1 / beta)


def fixed_point_gradient(
    net: EnergyNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int | None = None,
    bptt_steps: int | None = None,
    eps: float | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss C(s^0) (batch mean) and its true gradient dC(s^0)/dtheta, by autograd.

    Relaxes ``steps`` free steps without a graph, then ``bptt_steps`` more (default:
    ``steps``) with one, and backpropagates through those (backprop through time, as in
    Ernoult et al. 2019). Once the relaxation has converged this is the gradient at the
    free fixed point; use float64 to compare with EP at small beta.
    """
    steps = net.free_steps if steps is None else steps
    bptt_steps = steps if bptt_steps is None else bptt_steps
    with torch.no_grad():
        start = net.relax(x, steps=steps, eps=eps)
    params = list(net.parameters())
    with torch.enable_grad():
        states = net.relax(x, steps=bptt_steps, eps=eps, init_states=start)
        loss = net.cost(states, y).mean()
        grads = torch.autograd.grad(loss, params)
    return loss.detach(), list(grads)


class EquilibriumPropagation(LearningRule):
    """Train an EnergyNetwork with EP updates; ``fit`` steps p -= lr * update.

    ``nudging``: "positive" (+beta), "random-sign" (+-beta drawn per batch, the authors'
    code) or "symmetric" (+beta and -beta phases, Laborieux et al. 2021).
    ``layer_scales[l]`` multiplies layer l's weight and bias updates: with plain SGD,
    layer l then learns at rate lr * layer_scales[l] (the paper's per-layer rates
    0.1, 0.05 are lr=0.1, layer_scales=(1, 0.5)). ``free_steps`` defaults to the net's.
    """

    name = "EP"

    def __init__(
        self,
        net: EnergyNetwork,
        *,
        beta: float = 0.5,
        nudging: str = "random-sign",
        free_steps: int | None = None,
        nudged_steps: int = 4,
        layer_scales: Sequence[float] | None = None,
        seed: int = 0,
    ):
        super().__init__(net)
        check_beta(beta)
        if nudging not in NUDGINGS:
            raise ValueError(f"unknown nudging {nudging!r}; choose one of {NUDGINGS}")
        check_relaxation_args(net.eps, nudged_steps)
        if free_steps is not None:
            check_relaxation_args(net.eps, free_steps)
        if layer_scales is None:
            layer_scales = [1.0] * net.n_layers
        if len(layer_scales) != net.n_layers or any(not s > 0 for s in layer_scales):
            raise ValueError(f"layer_scales needs {net.n_layers} positive numbers, got {layer_scales!r}")
        self.beta = float(beta)
        self.nudging = nudging
        self.free_steps = net.free_steps if free_steps is None else int(free_steps)
        self.nudged_steps = int(nudged_steps)
        self.layer_scales = [float(s) for s in layer_scales]
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def steps_per_update(self) -> int:
        """Relaxation steps one update takes: the free phase plus one or two nudged phases."""
        return self.free_steps + self.nudged_steps * (2 if self.nudging == "symmetric" else 1)

    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        beta = self.beta
        if self.nudging == "random-sign" and torch.rand((), generator=self.generator) < 0.5:
            beta = -beta
        loss, updates = ep_updates(
            self.net, x, y, beta=beta, symmetric=self.nudging == "symmetric",
            free_steps=self.free_steps, nudged_steps=self.nudged_steps,
        )
        scales = self.layer_scales * 2  # weights, then biases
        return loss, [u * s for u, s in zip(updates, scales)]


def run_paper_experiment(
    dataset: str = "mnist",
    *,
    hidden_sizes: Sequence[int] = (500,),
    epochs: int = 25,
    batch_size: int = 20,
    free_steps: int = 40,
    nudged_steps: int = 4,
    eps: float = 0.5,
    beta: float = 0.5,
    nudging: str = "random-sign",
    layer_lrs: Sequence[float] = (0.1, 0.05),
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> History:
    """Scellier & Bengio's 1-hidden-layer MNIST run: 784-500-10, batch 20, eps 0.5,
    beta 0.5 with a random sign per batch, 4 nudged steps, per-layer rates 0.1 and 0.05,
    25 epochs, plain SGD. On the GPU when present (``device=None``).

    The paper used 20 free steps starting from each example's persisted state; here every
    free phase starts from zero, so the default is 40 free steps. Data: the official
    60k/10k split (the paper validated on 10k of the training images). The paper's
    2-hidden-layer setting is hidden_sizes=(500, 500), epochs=60, free_steps=150 (from
    persisted states), nudged_steps=6, beta=1, layer_lrs=(0.4, 0.1, 0.01).
    """
    if len(layer_lrs) != len(hidden_sizes) + 1:
        raise ValueError(f"need one learning rate per layer ({len(hidden_sizes) + 1}), got {layer_lrs!r}")
    data = load(dataset)
    sizes = [data[0].shape[1], *hidden_sizes, int(data[1].max()) + 1]
    net = EnergyNetwork(sizes, eps=eps, free_steps=free_steps, seed=seed)
    rule = EquilibriumPropagation(
        net, beta=beta, nudging=nudging, nudged_steps=nudged_steps,
        layer_scales=[lr / layer_lrs[0] for lr in layer_lrs], seed=seed,
    )
    return fit(rule, data, epochs=epochs, batch_size=batch_size, lr=layer_lrs[0], seed=seed,
               device=choose_device(device), progress=progress)
