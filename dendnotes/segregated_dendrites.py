"""Deep learning with segregated dendrites (Guerguiev, Lillicrap & Richards 2017, eLife 6:e22901).

Hidden neurons have a basal dendrite (feedforward input, V^b = W s + b), an apical
dendrite (feedback from the output layer, V^a = B s^out) and a soma; output neurons
have a dendrite and a soma that teaching conductances can push to V_E = 8 or V_I = -8
(neuron dynamics: :mod:`dendnotes.compartments`). Every training example is shown in
a forward phase and then a target phase, each 50 ms plus a Wald(2, 1) extra; averages
start after a settle time of 30 ms. The hidden neurons' plateau potentials are
alpha = sigma(mean apical voltage) at the end of each phase, and the local rules are

    output:  dL^1/dW^1 ~ -k_d phi_max (phi*_t - phi_max sigma(V_f)) sigma'(V_f) s_f^T,
             with phi*_t the mean output rate of the target phase,
    hidden:  dL^0/dW^0 ~ -k_b (alpha^t - alpha^f) phi_max sigma'(V_f) s_f^T,
             (target phi^0* = phi^0_f + alpha^t - alpha^f, L^0 ~ ||alpha^t - alpha^f||^2),

with W <- W - eta gamma dL/dW at the end of the target phase (bars: averages over the
phase after settling; s_f the mean filtered presynaptic spike train). B is fixed and
random ("random"), W^T of the layer above ("symmetric") or 80 % zero with the rest
multiplied by 5 ("sparse"); with two hidden layers both get feedback from the output.

Two modes. ``"spiking"`` simulates the paper's model step by step (dt = 1 ms) with
Poisson spikes (uniform random numbers from a seeded numpy ``Generator``; a
``torch.Generator`` works too). ``"rate"`` replaces every phase by its steady state, rates instead of
spikes: the limit the paper's derivations assume (long phases, E[s] = phi), close to
the "non-spiking" mode of the authors' code, at the cost of one pass per phase.

Online training, the paper's procedure (one example, two phases, one update), is
``compute_updates`` on one example. With g_a = 0 every phase is feed-forward in time,
and :func:`feedforward_phase` computes each layer's whole phase at once; the
step-by-step :meth:`SegregatedNetwork.run_phase` is the reference (and the simulation
for g_a > 0): fed the same random numbers, the two agree to floating-point rounding.

Batching is an option: ``compute_updates(x, y)`` simulates the N examples of a batch
in parallel, as (N, n) tensors with one set of weights, and returns the mean of their N
updates, minibatch training. Each row of the batch carries its simulation state over to
the next batch, as the paper's single network carries its state from one example to
the next. All rows of a batch share one forward-phase and one target-phase length (two
Wald draws per batch). The paper's learning rates are tuned for online steps; apply them
to the batch mean (``lr`` of 1 to 3), not to the batch sum, which overshoots (see
``run_paper_experiment``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .compartments import (
    DendriteParams,
    Generator,
    PSPTrace,
    firing_rate,
    hidden_drives,
    initial_weight_moments,
    input_spike_probabilities,
    mean_psp,
    output_drives,
    phase_lengths,
    sample_input_spikes,
    sample_spikes,
    soma_euler_step,
    uniforms,
    soma_steady_state,
    uniform_weights,
)
from .files import write_json_atomically
from .mlp import reduce_loss
from .training import LearningRule, choose_device, fit

FEEDBACK = ("random", "symmetric", "sparse")
MODES = ("spiking", "rate")
FEEDBACK_SIGNALS = ("spikes", "rates")

# Learning rates eta of the paper's Methods, by number of hidden layers (hidden first).
PAPER_LEARNING_RATES = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}
# MNIST test error (%) after 60 epochs of online spiking training (paper, Figure 6).
PAPER_TEST_ERROR = {(): 8.3, (500,): 4.1, (500, 100): 3.2}
SPARSE_FEEDBACK_ZERO_FRACTION = 0.8
SPARSE_FEEDBACK_GAIN = 5.0
# The fast path computes a phase of up to LONGEST_BLOCK steps (a training phase, 50 ms + a Wald
# extra) as one block, longer ones (the 500 ms test phase) in blocks of TEST_BLOCK steps: a
# block's matrices cost n^2 per neuron.
LONGEST_BLOCK, TEST_BLOCK = 100, 50
TEST_ROWS = 100  # test images simulated together
TINY_TRACE = 1e-20  # see NetworkState.flush_tiny_traces
NEGLIGIBLE = 1e-15  # see weight_gradients


def sigmoid_derivative(v: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(v)
    return s * (1 - s)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class SegregatedNetwork(torch.nn.Module):
    """Input -> hidden layers of three-compartment neurons -> output of two-compartment neurons.

    ``sizes`` = [n_input, n_hidden..., n_output]; ``weights[l]`` (n_{l+1}, n_l) and
    ``biases[l]`` are the basal synapses, ``feedback[l]`` (n_hidden_l, n_output) the
    apical synapses B of hidden layer l. Initial weights are uniform with the spread
    that gives dendritic voltages of mean 3 and s.d. 6 (:func:`initial_weight_moments`;
    the paper: "voltages between -6 and 12"), biases 0.8. B of a hidden layer is drawn
    like the feedforward weights leaving that layer (as in the authors' code), which
    keeps apical voltages within the sigmoid's linear range.

    Weights are stored column by column (``weights[l].T`` is contiguous): the weights of
    one presynaptic neuron lie together, so the sparse input spikes of a phase gather
    whole rows of W^T, and the online updates, outer products, keep that layout.
    """

    def __init__(
        self,
        sizes: list[int],
        *,
        params: DendriteParams | None = None,
        feedback: str = "random",
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
        if feedback not in FEEDBACK:
            raise ValueError(f"unknown feedback {feedback!r}; choose one of {FEEDBACK}")
        self.sizes = [int(n) for n in sizes]
        self.params = params if params is not None else DendriteParams()
        self.feedback_kind = feedback
        generator = torch.Generator().manual_seed(seed)
        weights, biases, spreads = [], [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            mean, sd = initial_weight_moments(n_in, phi_max=self.params.phi_max)
            spreads.append((mean, sd))
            w = uniform_weights((n_out, n_in), mean, sd, generator).to(dtype)
            weights.append(torch.nn.Parameter(w.T.contiguous().T))  # column by column: see the class docstring
            biases.append(torch.nn.Parameter(torch.full((n_out,), 0.8, dtype=dtype)))
        self.weights = torch.nn.ParameterList(weights)
        self.biases = torch.nn.ParameterList(biases)
        for l in range(self.n_hidden):
            mean, sd = spreads[l + 1]
            y = uniform_weights((self.sizes[l + 1], self.sizes[-1]), mean, sd, generator)
            if feedback == "sparse":
                n = y.numel()
                zeros = torch.randperm(n, generator=generator)[: int(SPARSE_FEEDBACK_ZERO_FRACTION * n)]
                y.view(-1)[zeros] = 0.0
                y *= SPARSE_FEEDBACK_GAIN
            self.register_buffer(f"feedback_{l}", y.to(dtype))
        self.refresh_feedback()

    @property
    def n_hidden(self) -> int:
        return len(self.sizes) - 2

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def feedback(self) -> list[torch.Tensor]:
        """Y_l (n_hidden_l, n_output) for every hidden layer."""
        return [getattr(self, f"feedback_{l}") for l in range(self.n_hidden)]

    @torch.no_grad()
    def refresh_feedback(self) -> None:
        """Symmetric feedback follows the forward weights: Y_last = W_out^T, Y_l = W_{l+1}^T Y_{l+1}."""
        if self.feedback_kind != "symmetric":
            return
        above = None
        for l in reversed(range(self.n_hidden)):
            y = self.weights[l + 1].T if above is None else self.weights[l + 1].T @ above
            getattr(self, f"feedback_{l}").copy_(y)
            above = y

    def check_input(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"input must have shape (batch, {self.sizes[0]}), got {tuple(x.shape)}")
        if y is not None:
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise ValueError(f"labels must be int64 of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.sizes[-1]):
                raise ValueError(f"labels must lie in 0..{self.sizes[-1] - 1}")

    def teaching(self, y: torch.Tensor) -> torch.Tensor:
        """Teaching conductances g_E as a one-hot (N, n_out) tensor; g_I = 1 - g_E."""
        return torch.nn.functional.one_hot(y, self.sizes[-1]).to(self.weights[0].dtype)

    def loss(self, output: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """||sigma(V_out) - onehot(y)||^2: distance of the output rates (/ phi_max) from the teaching pattern."""
        per_example = ((torch.sigmoid(output) - self.teaching(y)) ** 2).sum(dim=1)
        return reduce_loss(per_example, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Steady-state output somatic voltages (the rate mode's prediction)."""
        return self.steady_phase(x).soma[-1]

    # -- rate mode -------------------------------------------------------------

    def steady_phase(
        self,
        x: torch.Tensor,
        teaching: torch.Tensor | None = None,
        *,
        start: "PhaseAverages | None" = None,
        tol: float = 1e-6,
        max_iter: int = 500,
    ) -> "PhaseAverages":
        """The phase's steady state with rates in place of spikes (Equation 24's limit).

        Every soma sits at its fixed point. With g_a = 0 one bottom-up pass gives it;
        with g_a > 0 hidden somata depend on the output through the apical dendrite, so
        the pass repeats (from ``start``'s output rates if given, damped if it starts
        to oscillate) until the output rates change by less than ``tol`` * phi_max.
        """
        self.check_input(x)
        p = self.params
        rates_in = p.phi_max * x
        first_basal = torch.addmm(self.biases[0], rates_in, self.weights[0].T)
        out_rate = start.output_rate if start is not None else torch.zeros(
            x.shape[0], self.sizes[-1], dtype=x.dtype, device=x.device)
        step, last_change = 1.0, float("inf")
        for _ in range(max_iter):
            soma, inputs = [], [rates_in]
            for l in range(self.n_layers):
                basal = first_basal if l == 0 else torch.addmm(self.biases[l], inputs[-1], self.weights[l].T)
                if l < self.n_hidden:
                    apical = out_rate @ self.feedback[l].T if p.g_a > 0 else None
                    soma.append(soma_steady_state(hidden_drives(basal, apical, p), p))
                    inputs.append(firing_rate(soma[-1], p))
                else:
                    soma.append(soma_steady_state(output_drives(basal, teaching, p), p))
            new_rate = firing_rate(soma[-1], p)
            if p.g_a == 0:
                out_rate = new_rate
                break
            change = float((new_rate - out_rate).detach().abs().max()) if new_rate.numel() else 0.0
            if change <= tol * p.phi_max:
                out_rate = new_rate
                break
            if change >= last_change:  # the plain iteration oscillates: damp it
                step = max(step / 2, 1 / 8)
            last_change = change
            out_rate = out_rate + step * (new_rate - out_rate)
        else:
            raise RuntimeError(f"the steady state did not converge in {max_iter} iterations (g_a = {p.g_a})")
        return PhaseAverages(soma=soma, apical=[out_rate @ y.T for y in self.feedback], inputs=inputs,
                             output_rate=out_rate)

    def steady_phases(self, x: torch.Tensor, y: torch.Tensor) -> tuple["PhaseAverages", "PhaseAverages"]:
        """Forward and target phases of the rate mode. With g_a = 0 the hidden layers do not
        feel the teaching signal, so the target phase only recomputes the output layer."""
        forward = self.steady_phase(x)
        teaching = self.teaching(y)
        p = self.params
        if p.g_a > 0:
            return forward, self.steady_phase(x, teaching, start=forward)
        basal = torch.addmm(self.biases[-1], forward.inputs[-1], self.weights[-1].T)
        soma = soma_steady_state(output_drives(basal, teaching, p), p)
        rate = firing_rate(soma, p)
        target = PhaseAverages(soma=forward.soma[:-1] + [soma], apical=[rate @ w.T for w in self.feedback],
                               inputs=forward.inputs, output_rate=rate)
        return forward, target

    # -- spiking mode ----------------------------------------------------------

    @torch.no_grad()
    def run_phase(
        self,
        state: "NetworkState",
        x: torch.Tensor,
        n_steps: int,
        teaching: torch.Tensor | None = None,
        *,
        generator: Generator = None,
        stochastic: bool = True,
        record: dict | None = None,
    ) -> "PhaseAverages":
        """Simulate one phase of ``n_steps`` steps from ``state`` (updated in place).

        Each step draws the input spikes, then updates every layer bottom-to-top:
        dendrites, soma (Euler), spikes, filtered spike train. Apical dendrites see the
        output layer's filtered spikes of the previous step. Averages run over the steps
        after the settle time. ``stochastic=False`` transmits the expected spike counts
        phi dt instead of spikes (deterministic). ``record``, a dict, receives per-step
        lists of voltages and spikes.

        Two exact shortcuts make it fast: input spikes are sparse, so the first basal
        potential W s(t) is filtered in the hidden layer's own space (W u <- a (W u + W x),
        W x a sum of a few weight columns), and the mean filtered inputs come from spike
        counts (:func:`mean_psp`) rather than per-step sums.
        """
        p = self.params
        settle = p.steps(p.settle)
        if n_steps <= settle:
            raise ValueError(f"a phase of {n_steps} steps is not longer than the settle time ({settle} steps)")
        batch, n_in = x.shape
        input_rate = p.phi_max * x
        w_in = self.weights[0].T / (p.tau_L - p.tau_s)  # so that z_long - z_short = W s
        w_in = w_in.contiguous()
        z_long, z_short = state.input_trace.long @ w_in, state.input_trace.short @ w_in
        if stochastic:
            active, probability = input_spike_probabilities(input_rate, p)
        else:
            expected = input_rate * p.dt
            expected_drive = expected @ w_in
        counts = [torch.zeros_like(state.input_trace.long)] + [torch.zeros_like(v) for v in state.soma[:-1]]
        soma_sum = [torch.zeros_like(v) for v in state.soma]
        out_psp_sum = torch.zeros_like(state.soma[-1])
        rate_sum = torch.zeros_like(state.soma[-1])
        out_psp = state.traces[-1].psp(p)
        compute_apical = p.g_a > 0 or record is not None
        apical = None
        for step in range(n_steps):
            averaging = step >= settle
            if step == settle:
                starts = [state.input_trace.copy()] + [t.copy() for t in state.traces[:-1]]
            if averaging:
                out_psp_sum.add_(out_psp)
            if stochastic:
                fired = sample_input_spikes(active, probability, generator)
                rows = torch.div(fired, n_in, rounding_mode="floor")
                per_row = torch.bincount(rows, minlength=batch)
                offsets = torch.cumsum(per_row, 0) - per_row
                drive = torch.nn.functional.embedding_bag(fired - rows * n_in, w_in, offsets, mode="sum")
                state.input_trace.step_sparse(fired, p)
                if averaging:
                    counts[0].view(-1).index_add_(0, fired, torch.ones(fired.shape, dtype=x.dtype, device=x.device))
            else:
                drive = expected_drive
                state.input_trace.step(expected, p)
                if averaging:
                    counts[0].add_(expected)
            z_long.add_(drive).mul_(p.decay_long)
            z_short.add_(drive).mul_(p.decay_short)
            basal = torch.sub(z_long, z_short).add_(self.biases[0])
            for l in range(self.n_layers):
                if l > 0:
                    basal = torch.addmm(self.biases[l], s, self.weights[l].T)
                if l < self.n_hidden:
                    if compute_apical:
                        apical = out_psp @ self.feedback[l].T
                    drives = hidden_drives(basal, apical, p)
                else:
                    drives = output_drives(basal, teaching, p)
                v = soma_euler_step(state.soma[l], drives, p)
                state.soma[l] = v
                rate = firing_rate(v, p)
                spikes = sample_spikes(rate, p, generator) if stochastic else rate * p.dt
                state.traces[l].step(spikes, p)
                s = state.traces[l].psp(p)
                if averaging:
                    soma_sum[l].add_(v)
                    if l < self.n_hidden:
                        counts[l + 1].add_(spikes)
                if record is not None:
                    for key, value in (("soma", v), ("basal", basal), ("spikes", spikes), ("apical", apical)):
                        if key != "apical" or l < self.n_hidden:
                            record.setdefault(f"{key}_{l}", []).append(value.clone())
            out_psp = s
            if averaging:
                rate_sum.add_(rate)
        n = n_steps - settle
        ends = [state.input_trace] + state.traces[:-1]
        mean_out_psp = out_psp_sum / n
        averages = PhaseAverages(
            soma=[v / n for v in soma_sum],
            apical=[mean_out_psp @ y.T for y in self.feedback],
            inputs=[mean_psp(a, b, c, n, p) for a, b, c in zip(starts, ends, counts)],
            output_rate=rate_sum / n,
        )
        state.flush_tiny_traces()
        state.projected_input = None
        return averages


def record_example(
    net: SegregatedNetwork, x: torch.Tensor, label: int, *, n_forward: int = 60, n_target: int = 60, seed: int = 0
) -> tuple[dict[str, torch.Tensor], PhaseAverages, PhaseAverages]:
    """Simulate one example's forward and target phases from rest, keeping every step.

    Returns the recording, a dict of (n_forward + n_target, n) tensors: ``soma_l``,
    ``basal_l``, ``spikes_l`` for every layer l and ``apical_l`` for hidden layers, and the
    forward and target phase averages.
    """
    x = x.reshape(1, -1).to(net.weights[0].dtype)
    state = NetworkState.at_rest(net, (1,))
    generator = np.random.default_rng(seed)
    record: dict[str, list] = {}
    forward = net.run_phase(state, x, n_forward, generator=generator, record=record)
    teaching = net.teaching(torch.tensor([label], device=x.device))
    target = net.run_phase(state, x, n_target, teaching, generator=generator, record=record)
    return {key: torch.cat(values) for key, values in record.items()}, forward, target


@dataclass
class PhaseAverages:
    """Averages over one phase after settling, every tensor (N, n).

    ``soma[l]``: somatic voltage of layer l (hidden layers, then output);
    ``apical[l]``: apical voltage of hidden layer l; ``inputs[l]``: filtered spike train
    arriving at layer l (input layer first); ``output_rate``: output firing rate phi.
    """

    soma: list[torch.Tensor]
    apical: list[torch.Tensor]
    inputs: list[torch.Tensor]
    output_rate: torch.Tensor


def drop_tiny_traces(trace: torch.Tensor) -> torch.Tensor:
    """The trace with entries at or below TINY_TRACE set to 0 (traces are never negative)."""
    return torch.nn.functional.threshold(trace, TINY_TRACE, 0.0)


@dataclass
class NetworkState:
    """What the simulation carries from step to step: traces of every spiking layer and somata."""

    input_trace: PSPTrace
    soma: list[torch.Tensor]
    traces: list[PSPTrace]
    # (W^0, its version, W^0 u) for the input traces u, kept by feedforward_phase for the next phase
    # while W^0 is unchanged (a forward phase's end serves the target phase); None: compute it
    projected_input: tuple | None = dataclasses.field(default=None, repr=False, compare=False)
    # (x, active_inputs(x)) of the latest phase, for the next phase of the same example
    inputs: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def at_rest(cls, net: SegregatedNetwork, batch_shape=(), *, device=None) -> "NetworkState":
        """All voltages and traces zero; ``batch_shape`` () gives the unbatched 1-D state."""
        dtype = net.weights[0].dtype
        device = device if device is not None else net.weights[0].device
        shape = lambda n: (*batch_shape, n)  # noqa: E731
        return cls(
            input_trace=PSPTrace.zeros(shape(net.sizes[0]), dtype=dtype, device=device),
            soma=[torch.zeros(shape(n), dtype=dtype, device=device) for n in net.sizes[1:]],
            traces=[PSPTrace.zeros(shape(n), dtype=dtype, device=device) for n in net.sizes[1:]],
        )

    def flush_tiny_traces(self) -> None:
        """Set trace entries below TINY_TRACE to zero (a spike long ago: far below any effect).

        Traces of inputs that stopped firing decay towards subnormal floats, and arithmetic
        on subnormal floats is much slower on most CPUs; both simulations call this
        at the end of every phase, so they stay equal.
        """
        for trace in [self.input_trace, *self.traces]:
            trace.both = drop_tiny_traces(trace.both)

    def resized(self, batch: int) -> "NetworkState":
        """The first ``batch`` rows, padded with rows at rest if the state has fewer."""

        def fit(t: torch.Tensor) -> torch.Tensor:
            if t.shape[0] >= batch:
                return t[:batch].clone()
            return torch.cat([t, torch.zeros(batch - t.shape[0], *t.shape[1:], dtype=t.dtype, device=t.device)])

        return NetworkState(
            input_trace=PSPTrace(fit(self.input_trace.long), fit(self.input_trace.short)),
            soma=[fit(v) for v in self.soma],
            traces=[PSPTrace(fit(t.long), fit(t.short)) for t in self.traces],
        )


# ---------------------------------------------------------------------------
# The fast path: with g_a = 0 a phase is feed-forward in time
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def decay_operators(decay: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, q) in float64 with T[t, m] = decay^(t - m) for m <= t (else 0) and q[t] = decay^(t + 1).

    The recurrence y_t = decay y_{t-1} + f_t (t = 0..n-1, from y_{-1}) has the solution
    y = T f + q y_{-1}: one matrix product replaces the loop over time.
    """
    t = torch.arange(n, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    base = torch.tensor(decay, dtype=torch.float64)
    matrix = torch.where(lag >= 0, base ** lag.clamp(min=0), torch.zeros((), dtype=torch.float64))
    return matrix, base ** (t + 1)


@functools.lru_cache(maxsize=512)
def kernel_rows(params: DendriteParams, n: int, window_start: int):
    """The PSP traces of :class:`PSPTrace` over a block of n steps, as float64 matrices.

    They act on the stacked rows [x_0..x_{n-1}; u_long; u_short], the spikes of each
    step and the two traces before the block: ``psp`` (n rows) gives the filtered spike
    train after every step, ``end`` (2 rows) the traces after the block. ``window`` is 1
    on the steps averaged (from ``window_start`` on), and ``previous`` the row that sums
    psp_{t-1} over them (the apical input sees the previous step's output).
    """
    scale = 1.0 / (params.tau_L - params.tau_s)
    (long, q_long), (short, q_short) = decay_operators(params.decay_long, n), decay_operators(params.decay_short, n)
    psp = torch.cat([(params.decay_long * long - params.decay_short * short) * scale,
                     torch.stack([q_long, -q_short], dim=1) * scale], dim=1)
    end = torch.zeros(2, n + 2, dtype=torch.float64)
    end[0, :n], end[0, n] = params.decay_long * long[-1], params.decay_long**n
    end[1, :n], end[1, n + 1] = params.decay_short * short[-1], params.decay_short**n
    window = (torch.arange(n) >= window_start).to(torch.float64)
    before = torch.zeros(n + 2, dtype=torch.float64)
    before[n:] = torch.tensor([scale, -scale], dtype=torch.float64)  # psp_{-1}, from the traces before the block
    previous = window[0] * before + window[1:] @ psp[:-1]
    return psp, end, window, previous


@functools.lru_cache(maxsize=512)
def layer_operator(params: DendriteParams, decay: float, gain: float, n: int, window_start: int, weight: float,
                   dtype: torch.dtype, device: str) -> torch.Tensor:
    """(n + 3, n + 4) operator for one layer's block, from its input to its somatic voltages.

    Input rows: [W x_0..W x_{n-1}; W u_long; W u_short; offset; V_start], the presynaptic
    spikes and traces seen through the weights, the constant part of the drive (bias,
    teaching) and the voltage before the block. Output rows: [V_0..V_{n-1};
    weight * sum_t w_t V_t; W u_long, W u_short after the block]. The soma is the Euler step
    V_t = decay V_{t-1} + gain (basal_t + offset) with basal_t = W psp_t (the PSP
    filter and the weights commute).
    """
    psp, end, window, _ = kernel_rows(params, n, window_start)
    soma, powers = decay_operators(decay, n)
    voltage = torch.cat([gain * soma @ psp, gain * soma.sum(dim=1, keepdim=True), powers[:, None]], dim=1)
    traces = torch.cat([end, torch.zeros(2, 2, dtype=torch.float64)], dim=1)
    return torch.cat([voltage, weight * (window @ voltage)[None], traces]).to(dtype=dtype, device=device)


@dataclass(frozen=True)
class BlockOperators:
    """What :func:`feedforward_phase` multiplies a block of n steps by (see :func:`block_operators`), numpy arrays."""

    summary: np.ndarray  # (4, n + 2): [spikes; traces before] -> [traces after; mean psp; mean previous psp]
    summary_spikes: np.ndarray  # its first n columns
    summary_traces: np.ndarray  # its last 2 columns
    rate_window: np.ndarray  # (n,): phi dt -> the block's share of the mean rate phi
    layers: tuple[np.ndarray, ...]  # layer_operator of every layer
    steps: np.ndarray  # 0..n-1


@functools.lru_cache(maxsize=512)
def block_operators(params: DendriteParams, n: int, window_start: int, n_mean: int, somata: tuple,
                    dtype: torch.dtype) -> BlockOperators:
    """The matrices of a block of n steps whose averaging window starts at step ``window_start``,
    with averages over ``n_mean`` steps in all; ``somata`` holds (decay, gain) for every layer.

    ``summary`` acts on the stacked rows [x_0..x_{n-1}; u_long; u_short], a layer's spikes
    and its traces before the block (:func:`kernel_rows`): it gives the traces after the
    block and the block's shares of the mean filtered spike train and of the mean of the
    previous step's (what the apical dendrites see).
    """
    psp, end, window, previous = kernel_rows(params, n, window_start)
    summary = torch.cat([end, (window @ psp)[None] / n_mean, previous[None] / n_mean]).to(dtype).numpy()
    return BlockOperators(
        summary=summary, summary_spikes=summary[:, :n], summary_traces=summary[:, n:],
        rate_window=(window / (n_mean * params.dt)).to(dtype).numpy(),
        layers=tuple(layer_operator(params, decay, gain, n, window_start, 1 / n_mean, dtype, "cpu").numpy()
                     for decay, gain in somata),
        steps=np.arange(n))


def input_drive(table: torch.Tensor, steps_fired: np.ndarray, columns: np.ndarray, rows: np.ndarray | None,
                steps: np.ndarray, batch: int) -> np.ndarray:
    """W x_t for every step t and row, (n_steps * batch, n_out): sums of weight columns of the inputs that fired.

    ``table`` is W^T (n_in, n_out), ``steps_fired`` the step of every spike in step order,
    ``columns`` / ``rows`` the input index / batch row of every spike (``rows`` None for
    one row), ``steps`` 0..n_steps-1.
    """
    if rows is None:
        starts = np.searchsorted(steps_fired, steps)
    else:  # bag t * batch + r: sorted, as nonzero goes step by step, and row by row within a step
        starts = np.searchsorted(steps_fired * batch + rows, np.arange(len(steps) * batch))
    return torch.nn.functional.embedding_bag(torch.from_numpy(columns), table, torch.from_numpy(starts),
                                             mode="sum").numpy()


def project_traces(traces: np.ndarray, table: np.ndarray) -> np.ndarray:
    """traces @ table, over the columns of ``traces`` that are not all zero (inputs that spiked lately)."""
    used = np.flatnonzero(traces.any(axis=0))
    return traces[:, used] @ table[used]


def active_inputs(x: torch.Tensor, params: DendriteParams):
    """(flat indices of the inputs that can spike, their spike probability per step, their input
    index, their batch row or None for one row), numpy arrays: what :func:`feedforward_phase` needs of ``x``."""
    active, probability = (t.cpu().numpy() for t in input_spike_probabilities(params.phi_max * x, params))
    if x.shape[0] == 1:
        return active, probability, active, None
    rows = active // x.shape[1]
    return active, probability, active - rows * x.shape[1], rows


def sigmoid_spike_probability(v: np.ndarray, scale: float) -> np.ndarray:
    """scale * sigma(v), computed in place of a new array (numpy: far less overhead than torch on small arrays)."""
    out = np.negative(v)
    np.exp(out, out=out)
    out += 1.0
    return np.divide(scale, out, out=out)


@torch.no_grad()
def feedforward_phase(
    net: SegregatedNetwork,
    state: NetworkState,
    x: torch.Tensor,
    n_steps: int,
    teaching: torch.Tensor | None = None,
    *,
    generator: Generator = None,
    block: int = 100,
) -> PhaseAverages:
    """:meth:`SegregatedNetwork.run_phase` for g_a = 0, computed ``block`` time steps at a time.

    With g_a = 0 the apical dendrite does not reach the soma, so within a phase no
    layer feels the layers above it, and the input spikes do not depend on the
    network: each layer's whole block follows from the layer below. Per block it draws
    the uniform random numbers that the step-by-step loop would draw, in the same
    order, in one call; then, layer after layer, the drive W s of every step as one
    product (input spikes are sparse: sums of weight columns), the PSP filter and the
    linear Euler soma as one matrix over time (:func:`layer_operator`), and all spikes at
    once. Same random numbers, same averages and state as ``run_phase`` up to
    floating-point rounding. It computes on the CPU in numpy (a phase is many small
    operations, each far cheaper in numpy than in torch; numpy's BLAS runs on the threads
    of the package's thread policy) and returns tensors on x's device.
    """
    p = net.params
    if p.g_a != 0:
        raise ValueError(f"the feed-forward phase needs g_a = 0, got {p.g_a}: use run_phase")
    settle = p.steps(p.settle)
    if n_steps <= settle:
        raise ValueError(f"a phase of {n_steps} steps is not longer than the settle time ({settle} steps)")
    batch, n_in = x.shape
    dtype, device = x.dtype, x.device
    if state.inputs is None or state.inputs[0] is not x:  # kept for the next phase of the same example
        state.inputs = (x, active_inputs(x, p))
    active, probability, columns, rows = state.inputs[1]
    as_numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731  (no copy on the CPU)
    table = net.weights[0].detach().cpu().T  # contiguous: SegregatedNetwork stores weights column by column
    table = table if table.is_contiguous() else table.contiguous()
    input_trace = as_numpy(state.input_trace.both).reshape(2, -1)
    traces = [as_numpy(t.both).reshape(2, -1) for t in state.traces]
    soma = [as_numpy(v).reshape(1, -1) for v in state.soma]
    cache, w_in = state.projected_input, net.weights[0]
    if cache is not None and cache[0] is w_in and cache[1] == w_in._version:
        basal_trace = cache[2]
    else:  # W u of the input traces
        basal_trace = project_traces(input_trace.reshape(2 * batch, n_in), table.numpy()).reshape(2, -1)
    offsets = [np.tile(as_numpy(b), (1, batch)) for b in net.biases]  # the soma's drive is basal + offset
    conductances = [p.g_b] * net.n_hidden + [p.g_d]
    leak = [p.g_l + g for g in conductances]
    if teaching is not None:  # g_E (E_E - V) + g_I (E_I - V) = (E_I + g_E (E_E - E_I)) - V, as g_E + g_I = 1
        offsets[-1] = offsets[-1] + (p.E_I + as_numpy(teaching).reshape(1, -1) * (p.E_E - p.E_I)) / p.g_d
        leak[-1] += 1.0
    somata = tuple((1 - p.dt * g_total, p.dt * g) for g_total, g in zip(leak, conductances))
    widths = [batch * n for n in net.sizes[1:]]
    bounds = np.cumsum([0, len(active), *widths])
    forward_t = [as_numpy(w).T for w in net.weights[1:]]
    n_mean = n_steps - settle
    means = [0.0] * (2 * net.n_layers + 2)  # mean input, somatic voltage of every layer; output psp and rate
    for start in range(0, n_steps, block):
        n = min(block, n_steps - start)
        ops = block_operators(p, n, min(n, max(0, settle - start)), n_mean, somata, dtype)
        noise = uniforms((n, int(bounds[-1])), generator, dtype=dtype).numpy()
        fired = noise[:, : len(active)] < probability
        summary = ops.summary_traces @ input_trace
        summary[:, active] += ops.summary_spikes @ fired.astype(noise.dtype)
        input_trace, means[0] = summary[:2], means[0] + summary[2]
        steps_fired, which = np.nonzero(fired)
        drive = input_drive(table, steps_fired, columns[which], None if rows is None else rows[which], ops.steps,
                            batch).reshape(n, -1)
        projected = np.concatenate([drive, basal_trace])
        for l in range(net.n_layers):
            v = ops.layers[l] @ np.concatenate([projected, offsets[l], soma[l]])
            if l == 0:
                basal_trace = v[n + 1 :]
            soma[l], means[net.n_layers + l] = v[n - 1 : n], means[net.n_layers + l] + v[n]
            probabilities = sigmoid_spike_probability(v[:n], p.phi_max * p.dt)  # phi dt
            spikes = np.empty((n + 2, widths[l]), dtype=noise.dtype)
            np.less(noise[:, bounds[l + 1] : bounds[l + 2]], probabilities, out=spikes[:n])
            spikes[n:] = traces[l]
            summary = ops.summary @ spikes
            traces[l] = summary[:2]
            if l < net.n_hidden:
                means[l + 1] = means[l + 1] + summary[2]
                projected = (spikes.reshape(-1, net.sizes[l + 1]) @ forward_t[l]).reshape(n + 2, -1)
            else:
                means[-2] = means[-2] + summary[3]
                means[-1] = means[-1] + ops.rate_window @ probabilities
    as_tensor = lambda a, shape: torch.from_numpy(np.ascontiguousarray(a)).view(shape).to(device)  # noqa: E731
    state.input_trace = PSPTrace.stacked(drop_tiny_traces(as_tensor(input_trace, (2, batch, n_in))))
    state.traces = [PSPTrace.stacked(drop_tiny_traces(as_tensor(t, (2, batch, -1)))) for t in traces]
    state.soma = [as_tensor(v, (batch, -1)) for v in soma]
    state.projected_input = (w_in, w_in._version, basal_trace)
    mean_out_psp = as_tensor(means[-2], (batch, -1))
    return PhaseAverages(
        soma=[as_tensor(v, (batch, -1)) for v in means[net.n_layers : 2 * net.n_layers]],
        apical=[mean_out_psp @ y.T for y in net.feedback],
        inputs=[as_tensor(s, (batch, -1)) for s in means[: net.n_layers]],
        output_rate=as_tensor(means[-1], (batch, -1)),
    )


# ---------------------------------------------------------------------------
# The learning rules
# ---------------------------------------------------------------------------


def local_deltas(net: SegregatedNetwork, forward: PhaseAverages, target: PhaseAverages) -> list[torch.Tensor]:
    """dL^l/db^l per example, (N, n_l) for every layer (hidden first): the paper's Equations 28 and 33.

    output:  -k_d phi_max (phi_t - phi_max sigma(V_f)) sigma'(V_f)
    hidden:  -k_b (alpha^t - alpha^f) phi_max sigma'(V_f),  alpha = sigma(mean apical voltage).
    """
    p = net.params
    deltas = []
    for l in range(net.n_hidden):
        alpha_f, alpha_t = torch.sigmoid(forward.apical[l]), torch.sigmoid(target.apical[l])
        deltas.append(-p.k_b * (alpha_t - alpha_f) * p.phi_max * sigmoid_derivative(forward.soma[l]))
    v_out = forward.soma[-1]
    error = target.output_rate - p.phi_max * torch.sigmoid(v_out)
    deltas.append(-p.k_d * p.phi_max * error * sigmoid_derivative(v_out))
    return deltas


def backprop_deltas(net: SegregatedNetwork, forward: PhaseAverages, target: PhaseAverages,
                    local: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """What backprop would use instead: the output loss's gradient in the equivalent rate network.

    The equivalent rate network at the phase averages is V^{l} = k_b (W^l s^{l-1} + b^l),
    s^l = phi_max sigma(V^l), V^out = k_d (W^out s + b^out), and the output loss
    L^1 = ||phi_t - phi_max sigma(V^out)||^2 with the target phase's rates held fixed.
    Its gradient w.r.t. the basal potentials (halved, like the paper's local rules):
    delta^out as in :func:`local_deltas` (``local``, if already computed), delta^l =
    (delta^{l+1} W^{l+1}) k_b phi_max sigma'(V^l).
    """
    p = net.params
    deltas = [(local if local is not None else local_deltas(net, forward, target))[-1]]
    for l in reversed(range(net.n_hidden)):
        back = deltas[0] @ net.weights[l + 1]
        deltas.insert(0, back * p.k_b * p.phi_max * sigmoid_derivative(forward.soma[l]))
    return deltas


def weight_gradients(
    deltas: list[torch.Tensor], forward: PhaseAverages, scales: list[float] | None = None
) -> list[torch.Tensor]:
    """Batch means [dL/dW_1..dW_L, dL/db_1..db_L] from dL/db per example and the mean inputs s_f,
    each layer's pair multiplied by ``scales[l]`` if given (applied to the deltas: cheaper)."""
    batch = deltas[0].shape[0]
    scales = [1.0] * len(deltas) if scales is None else scales
    # Entries of at most NEGLIGIBLE (a trace of a spike long ago, a saturated neuron's slope) are set to 0:
    # they change nothing, and their products would be subnormal floats, whose arithmetic is ~20x slower.
    scaled = [torch.nn.functional.hardshrink(d * (s / batch), NEGLIGIBLE) for d, s in zip(deltas, scales)]
    inputs = [torch.nn.functional.threshold(s, NEGLIGIBLE, 0.0) for s in forward.inputs]  # rates: never negative
    # computed as (dL/dW)^T and transposed: the layout of SegregatedNetwork's weights
    if batch == 1:  # an outer product: broadcasting beats a matrix product with an inner dimension of 1
        return [(s.T * d).T for d, s in zip(scaled, inputs)] + [d[0] for d in scaled]
    return [(s.T @ d).T for d, s in zip(scaled, inputs)] + [d.sum(dim=0) for d in scaled]


def output_loss(net: SegregatedNetwork, forward: PhaseAverages, target: PhaseAverages) -> torch.Tensor:
    """Batch mean of ||phi_t - phi_max sigma(V_f)||^2 / phi_max^2, the output layer's loss L^1."""
    p = net.params
    error = target.output_rate / p.phi_max - torch.sigmoid(forward.soma[-1])
    return (error**2).sum(dim=1).mean()


@torch.no_grad()
def update_angles(
    net: SegregatedNetwork, forward: PhaseAverages, target: PhaseAverages, *, per_example: bool = True
) -> list[torch.Tensor]:
    """Angle (degrees) between each hidden layer's update and backprop's, one tensor per hidden layer.

    ``per_example``: one angle per example, as the paper's Figure 7 (for one example both
    weight updates are outer products with the same input s_f, so their angle is the
    angle between the deltas). Otherwise one angle between the batch-mean weight updates.
    """
    local = local_deltas(net, forward, target)
    bp = backprop_deltas(net, forward, target, local)
    angles = []
    for l in range(net.n_hidden):
        if per_example:
            cosine = torch.nn.functional.cosine_similarity(local[l], bp[l], dim=1, eps=1e-30)
        else:
            a = local[l].T @ forward.inputs[l]
            b = bp[l].T @ forward.inputs[l]
            cosine = torch.nn.functional.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1), eps=1e-30)[0]
        angles.append(torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0))))
    return angles


def check_learning_rates(net: SegregatedNetwork, learning_rates) -> tuple[float, ...]:
    if learning_rates is None:
        if net.n_hidden not in PAPER_LEARNING_RATES:
            raise ValueError(f"the paper gives no learning rates for {net.n_hidden} hidden layers; pass learning_rates")
        return PAPER_LEARNING_RATES[net.n_hidden]
    rates = tuple(float(r) for r in learning_rates)
    if len(rates) != net.n_layers or not all(r >= 0 and math.isfinite(r) for r in rates):
        raise ValueError(f"need {net.n_layers} non-negative learning rates (hidden first), got {learning_rates!r}")
    return rates


class SegregatedDendrites(LearningRule):
    """The paper's local learning rules, for examples simulated in parallel.

    ``compute_updates`` returns eta_l gamma_l dL^l/dW^l averaged over the batch, i.e. the
    paper's per-example step; train with ``fit(..., lr=...)`` where ``lr`` multiplies it
    (lr = 1: the paper's step size applied to the batch mean; up to about 3 is stable,
    the batch sum, lr = N, is not). ``learning_rates``
    defaults to the paper's etas; a learning rate of 0 freezes a layer (0 for the hidden
    layer: the readout-only control). ``feedback_signal="rates"`` feeds the apical
    dendrites the output layer's mean rates instead of its filtered spike trains (the
    paper's comparison in Figure 7A: everything else spiking). ``stepwise`` simulates
    step by step even where the fast path applies (for tests and benchmarks).
    ``steady_test`` makes ``predict`` use the rate mode's steady state with the trained
    weights, the limit of a long test phase, instead of a 500 ms spiking phase.
    ``last_phases`` keeps the (forward, target) averages of the latest batch for
    diagnostics such as :func:`update_angles`.
    """

    name = "segregated dendrites"

    def __init__(self, net: SegregatedNetwork, *, mode: str = "spiking", learning_rates=None, seed: int = 0,
                 stepwise: bool = False, feedback_signal: str = "spikes", steady_test: bool = False):
        super().__init__(net)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if feedback_signal not in FEEDBACK_SIGNALS:
            raise ValueError(f"unknown feedback_signal {feedback_signal!r}; choose one of {FEEDBACK_SIGNALS}")
        self.mode = mode
        self.stepwise = stepwise
        self.feedback_signal = feedback_signal
        self.steady_test = steady_test
        self.learning_rates = check_learning_rates(net, learning_rates)
        self.seed = seed
        self.phase_rng = np.random.default_rng(seed)
        self.state: NetworkState | None = None
        self.last_phases: tuple[PhaseAverages, PhaseAverages] | None = None
        self.to(net.weights[0].device)

    def to(self, device) -> "SegregatedDendrites":
        device = torch.device(device)
        self.net.to(device)
        self.generator = np.random.default_rng(self.seed)
        self.state = None
        return self

    def scales(self) -> list[float]:
        """eta_l gamma_l for every layer: gamma^0 (P_hidden) for hidden layers, gamma^1 (P_output) for the output."""
        p = self.net.params
        return [eta * (p.P_output if l == self.net.n_layers - 1 else p.P_hidden)
                for l, eta in enumerate(self.learning_rates)]

    @torch.no_grad()
    def phases(self, x: torch.Tensor, y: torch.Tensor) -> tuple[PhaseAverages, PhaseAverages]:
        """Forward and target phase averages for a batch, in the rule's mode."""
        self.net.check_input(x, y)
        self.net.refresh_feedback()
        if self.mode == "rate":
            return self.net.steady_phases(x, y)
        teaching = self.net.teaching(y)
        if self.state is None:
            self.state = NetworkState.at_rest(self.net, (x.shape[0],))
        elif self.state.soma[0].shape[0] != x.shape[0]:
            self.state = self.state.resized(x.shape[0])
        n_forward, n_target = phase_lengths(self.phase_rng, 2, self.net.params)
        forward = self.simulate(self.state, x, n_forward, generator=self.generator)
        target = self.simulate(self.state, x, n_target, teaching, generator=self.generator)
        if self.feedback_signal == "rates":  # the apical dendrites see the output rates, not spikes
            forward, target = (dataclasses.replace(phase, apical=[phase.output_rate @ y.T for y in self.net.feedback])
                               for phase in (forward, target))
        return forward, target

    def simulate(self, state: NetworkState, x: torch.Tensor, n_steps: int, teaching=None, *, generator=None):
        """One spiking phase: :func:`feedforward_phase` when g_a = 0, else (or if ``stepwise``) the
        step-by-step :meth:`SegregatedNetwork.run_phase`; the two agree given the same random numbers."""
        if self.net.params.g_a == 0 and not self.stepwise:
            block = n_steps if n_steps <= LONGEST_BLOCK else TEST_BLOCK
            return feedforward_phase(self.net, state, x, n_steps, teaching, generator=generator, block=block)
        return self.net.run_phase(state, x, n_steps, teaching, generator=generator)

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        forward, target = self.phases(x, y)
        self.last_phases = (forward, target)
        updates = weight_gradients(local_deltas(self.net, forward, target), forward, self.scales())
        return output_loss(self.net, forward, target), updates

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Mean output somatic voltage in a single forward phase (test_phase ms from rest when spiking)."""
        self.net.check_input(x)
        self.net.refresh_feedback()
        if self.mode == "rate" or self.steady_test:
            return self.net.steady_phase(x).soma[-1]
        p = self.net.params
        generator = np.random.default_rng(self.seed + 1)
        outputs = []
        for rows in x.split(TEST_ROWS):  # a few rows at a time: a block's tensors stay in the cache
            state = NetworkState.at_rest(self.net, (rows.shape[0],))
            outputs.append(self.simulate(state, rows, p.steps(p.test_phase), generator=generator).soma[-1])
        return torch.cat(outputs)


# ---------------------------------------------------------------------------
# Training at scale and the paper-scale experiment
# ---------------------------------------------------------------------------


class PaperEvaluation:
    """Hooks for :func:`dendnotes.training.fit` that evaluate like the paper.

    Per epoch: the test error of a single forward phase (``fit`` does that), the
    training accuracy of the forward phases seen during the epoch (predicting every
    training image again in spiking mode would cost more than the training itself),
    ``hidden_angle_<l>``, the mean per-example angle between hidden layer l's update and
    backprop's over the epoch (the paper's Figure 7), and ``seconds`` since the start.
    ``angles[l]`` keeps hidden layer l's angle for every batch of the run (mean over the
    batch's examples). Use as ``fit(rule, data, ..., **PaperEvaluation(rule).hooks())``.
    """

    def __init__(self, rule: SegregatedDendrites):
        self.n_hidden = rule.net.n_hidden
        self.start = time.perf_counter()
        self.angles: list[list[float]] = [[] for _ in range(self.n_hidden)]
        self.reset()

    def reset(self) -> None:
        self.seen, self.correct, self.angle_sums = 0, 0, [0.0] * self.n_hidden

    def on_batch_end(self, rule: SegregatedDendrites, y: torch.Tensor) -> None:
        forward, target = rule.last_phases
        self.seen += len(y)
        self.correct += int((forward.soma[-1].argmax(dim=1) == y).sum())
        for l, angles in enumerate(update_angles(rule.net, forward, target)):
            self.angle_sums[l] += float(angles.sum())
            self.angles[l].append(float(angles.mean()))

    def on_epoch_end(self, epoch: int, rule: SegregatedDendrites) -> dict[str, float]:
        values = {"seconds": time.perf_counter() - self.start}
        if self.seen:
            values["train_accuracy"] = self.correct / self.seen
            values |= {f"hidden_angle_{l}": total / self.seen for l, total in enumerate(self.angle_sums)}
        self.reset()
        return values

    def hooks(self) -> dict:
        return {"on_batch_end": self.on_batch_end, "on_epoch_end": self.on_epoch_end, "evaluate_train": False}


def run_paper_experiment(
    dataset: str = "mnist",
    hidden: tuple[int, ...] = (500,),
    *,
    epochs: int = 60,
    mode: str = "spiking",
    feedback: str = "random",
    g_a: float = 0.0,
    batch_size: int = 1,
    lr: float = 1.0,
    learning_rates=None,
    device=None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """The paper's MNIST experiment (Figure 6): 784-[hidden]-10, 60 epochs, its learning rates, spiking.

    ``hidden`` = () for no hidden layer, (500,) or (500, 100) for the paper's networks;
    ``dataset`` "mnist" (downloaded on first use) or "fashion-mnist". Uses the GPU when
    present (``device=None``). The default, ``batch_size=1, lr=1``, is the paper's online
    procedure: one image, two phases, one update (the fast path of
    :func:`feedforward_phase` when g_a = 0). Minibatches are an option: ``batch_size``
    examples in parallel, and a step of ``lr`` times the paper's per-example step,
    applied to the batch-mean update. (Adding up the batch's updates, lr = batch_size,
    overshoots: the paper's step is tuned for online learning, and N of them at once
    drive the output neurons into the sigmoid's flat tail, where learning stops.)
    ``n_train`` / ``n_test`` use the first
    images only (for timing runs). Returns a record of the configuration, the test
    error after every epoch and the timing, and also writes it as JSON to ``out`` if
    given. ``python -m dendnotes.reproduce guerguiev2017-<sizes>`` runs it and saves
    the record with the book's other results.
    """
    from .data import load

    x_train, y_train, x_test, y_test = load(dataset)
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_test, y_test = x_test[:n_test], y_test[:n_test]
    sizes = [x_train.shape[1], *hidden, 10]
    device = choose_device(device)
    net = SegregatedNetwork(sizes, params=DendriteParams(g_a=g_a), feedback=feedback, seed=seed)
    rule = SegregatedDendrites(net, mode=mode, learning_rates=learning_rates, seed=seed)
    history = fit(rule, (x_train, y_train, x_test, y_test), epochs=epochs, batch_size=batch_size, lr=lr,
                  seed=seed, device=device, progress=progress, **PaperEvaluation(rule).hooks())
    test_error = [100 * (1 - a) for a in history["test_accuracy"]]
    result = {
        "experiment": "Guerguiev, Lillicrap & Richards 2017, Figure 6",
        "dataset": dataset,
        "sizes": sizes,
        "mode": mode,
        "feedback": feedback,
        "g_a": g_a,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "learning_rates": list(rule.learning_rates),
        "seed": seed,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "device": str(device),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "test_error_percent": test_error,
        "final_test_error_percent": test_error[-1],
        "paper_test_error_percent": PAPER_TEST_ERROR.get(tuple(hidden)) if dataset == "mnist" else None,
        "history": history.to_dict(),
        "wall_time_s": history.wall_time,
    }
    if out is not None:
        write_json_atomically(Path(out), result)
        result["path"] = str(out)
    return result
