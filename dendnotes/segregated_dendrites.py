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
Poisson spikes (uniform random numbers from a seeded
:class:`~dendnotes.segregated_dendrites_kernel.KernelRandom`; numpy and torch generators work
too for the step-by-step simulation). ``"rate"`` replaces every phase by its steady state, rates instead of
spikes: the limit the paper's derivations assume (long phases, E[s] = phi), close to
the "non-spiking" mode of the authors' code, at the cost of one pass per phase.

Online training, the paper's procedure (one example, two phases, one update), is
``train_step`` (or ``compute_updates``) on one example. On the CPU every phase runs as one
call of a compiled kernel (:func:`compiled_phase`, any g_a) and ``train_step`` applies
the update in place; the step-by-step :meth:`SegregatedNetwork.run_phase` in torch is the
reference (and the simulation on a GPU): fed the same random numbers, the two agree to
floating-point rounding.

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

import contextlib
import dataclasses
import functools
import math
import os
import platform
import signal
import threading
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
from . import segregated_dendrites_kernel as kernel
from .files import write_json_atomically
from .mlp import reduce_loss
from .segregated_dendrites_kernel import KernelRandom
from .training import History, LearningRule, choose_device, fit

FEEDBACK = ("random", "symmetric", "sparse")
MODES = ("spiking", "rate")
FEEDBACK_SIGNALS = ("spikes", "rates")

# Learning rates eta of the paper's Methods, by number of hidden layers (hidden first).
PAPER_LEARNING_RATES = {0: (0.19,), 1: (0.21, 0.21), 2: (0.23, 0.23, 0.12)}
# MNIST test error (%) after 60 epochs of online spiking training (paper, Figure 6).
PAPER_TEST_ERROR = {(): 8.3, (500,): 4.1, (500, 100): 3.2}
SPARSE_FEEDBACK_ZERO_FRACTION = 0.8
SPARSE_FEEDBACK_GAIN = 5.0
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
    _arrays: tuple | None = dataclasses.field(default=None, repr=False, compare=False)  # see arrays()

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

    def arrays(self) -> tuple:
        """(input long trace, input short trace, somata, long traces, short traces) as numpy arrays that
        share the tensors' memory, for the compiled phase (which works on them in place); kept while the
        tensors stay the same (the step-by-step phase replaces them)."""
        tensors = [self.input_trace.both, *self.soma, *(t.both for t in self.traces)]
        if self._arrays is None or len(self._arrays[0]) != len(tensors) or any(
                a is not b for a, b in zip(self._arrays[0], tensors)):
            for trace in [self.input_trace, *self.traces]:
                trace.both = trace.both.contiguous()
            self.soma = [v.contiguous() for v in self.soma]
            tensors = [self.input_trace.both, *self.soma, *(t.both for t in self.traces)]
            traces = [t.both.numpy() for t in self.traces]
            inputs = self.input_trace.both.numpy()
            self._arrays = (tensors, (inputs[0], inputs[1], tuple(v.numpy() for v in self.soma),
                                      tuple(t[0] for t in traces), tuple(t[1] for t in traces)))
        return self._arrays[1]

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
# The compiled phase (dendnotes.segregated_dendrites_kernel)
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def kernel_constants(params: DendriteParams) -> np.ndarray:
    """The model's constants in the order the phase kernel reads them (kernel.CONSTANTS)."""
    values = dict(decay_long=params.decay_long, decay_short=params.decay_short,
                  psp_scale=1.0 / (params.tau_L - params.tau_s), phi_max=params.phi_max, tiny_trace=TINY_TRACE)
    constants = np.array([values[name] if name in values else getattr(params, name) for name in kernel.CONSTANTS])
    constants.flags.writeable = False  # shared by every call (cached)
    return constants


def fast_path_applies(net: SegregatedNetwork, x: torch.Tensor, generator) -> bool:
    """The compiled phase runs on the CPU, in float32 or float64, with a :class:`KernelRandom`."""
    return (isinstance(generator, KernelRandom) and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64))


def numpy_views(tensors) -> tuple:
    """The tensors as numpy arrays sharing their memory (the kernel works in place)."""
    return tuple(t.detach().numpy() for t in tensors)


def kernel_inputs(x: torch.Tensor, params: DendriteParams) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the inputs that can spike and their spike probability per step, for the kernel
    (:func:`input_spike_probabilities` in numpy: far less overhead on one example)."""
    flat = x.detach().numpy().reshape(-1)
    active = np.flatnonzero(flat)
    as_dtype = flat.dtype.type
    return active, flat[active] * as_dtype(params.phi_max) * as_dtype(params.dt)



def weight_views(net: SegregatedNetwork) -> tuple:
    """(W^0 transposed, (W^l transposed for l >= 1), biases, feedback) as numpy views for the kernels;
    a network without hidden layers gets an unused (1, 1) feedback array (the kernel wants a tuple)."""
    transposed = tuple(w.detach().numpy().T for w in net.weights)
    feedback = numpy_views(net.feedback) or (np.zeros((1, 1), dtype=transposed[0].dtype),)
    others = transposed[1:] or (np.zeros((1, 1), dtype=transposed[0].dtype),)
    return transposed[0], others, numpy_views(net.biases), feedback


@torch.no_grad()
def compiled_phase(
    net: SegregatedNetwork,
    state: NetworkState,
    x: torch.Tensor,
    n_steps: int,
    teaching: torch.Tensor | None = None,
    *,
    generator: KernelRandom,
    views: tuple | None = None,
    inputs: tuple | None = None,
) -> PhaseAverages:
    """:meth:`SegregatedNetwork.run_phase` as one call of the compiled kernel (any g_a, CPU).

    The same steps in the same order, drawing the same uniform numbers from ``generator``:
    the same averages and state up to floating-point rounding. ``state`` is updated in
    place (its tensors share memory with the kernel's arrays). ``views`` (:func:`weight_views`)
    and ``inputs`` (:func:`kernel_inputs`) may be given when the caller already has them.
    """
    p = net.params
    settle = p.steps(p.settle)
    if n_steps <= settle:
        raise ValueError(f"a phase of {n_steps} steps is not longer than the settle time ({settle} steps)")
    if not fast_path_applies(net, x, generator):
        raise ValueError("the compiled phase needs CPU tensors of float32 or float64 and a KernelRandom generator")
    batch, n_in = x.shape
    dtype = x.dtype
    active, probability = inputs if inputs is not None else kernel_inputs(x, p)
    w_in, weights_t, biases, feedback = views if views is not None else weight_views(net)
    n_out = net.sizes[-1]
    teach = (teaching.detach().to(dtype).contiguous().numpy() if teaching is not None
             else np.zeros((0, n_out), dtype=w_in.dtype))
    in_long, in_short, somata, longs, shorts = state.arrays()
    new = lambda n: np.empty((batch, n), dtype=w_in.dtype)  # noqa: E731
    mean_inputs = tuple(new(n) for n in net.sizes[:-1])
    mean_soma = tuple(new(n) for n in net.sizes[1:])
    mean_apical = tuple(new(n) for n in net.sizes[1:-1]) or (new(1),)
    mean_out_psp, mean_rate = new(n_out), new(n_out)
    kernel.run_phase(n_steps, settle, active, probability, n_in, w_in, weights_t, biases, feedback,
                     teach, in_long, in_short, somata, longs, shorts, kernel_constants(p), generator.state, dtype == torch.float64,
                     mean_inputs, mean_soma, mean_apical, mean_out_psp, mean_rate)
    tensor = torch.from_numpy
    return PhaseAverages(soma=[tensor(a) for a in mean_soma], apical=[tensor(a) for a in mean_apical[: net.n_hidden]],
                         inputs=[tensor(a) for a in mean_inputs], output_rate=tensor(mean_rate))


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


def compiled_update_angles(net: SegregatedNetwork, forward: PhaseAverages, target: PhaseAverages) -> np.ndarray:
    """:func:`update_angles` (per example) as a (n_hidden, N) array, compiled when the averages are CPU tensors
    (the kernel's :func:`~dendnotes.segregated_dendrites_kernel.hidden_update_angles`)."""
    if net.n_hidden == 0:
        return np.empty((0, forward.soma[0].shape[0]))
    if forward.soma[0].device.type != "cpu":
        return np.array([a.cpu().numpy() for a in update_angles(net, forward, target)])
    p = net.params
    angles = np.empty((net.n_hidden, forward.soma[0].shape[0]))
    contiguous = lambda tensors: tuple(t.contiguous().numpy() for t in tensors)  # noqa: E731
    kernel.hidden_update_angles(tuple(w.detach().numpy().T for w in net.weights[1:]), contiguous(forward.soma),
                                contiguous(forward.apical), contiguous(target.apical),
                                target.output_rate.contiguous().numpy(), p.k_b, p.k_d, p.phi_max, angles)
    return angles


# ---------------------------------------------------------------------------
# Theorem 1: when does descending L^0 also descend L^1?
# ---------------------------------------------------------------------------


@torch.no_grad()
def theorem1_jacobians(net: SegregatedNetwork, forward: PhaseAverages,
                       output_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """J_beta (N, n_out, n_hidden) and J_gamma (N, n_hidden, n_out) of Theorem 1 (Guerguiev et al. 2017, Methods).

    For a network with one hidden layer the theorem writes the forward map from hidden to output
    rates as beta(x) = phi_max sigma(k_d W^1 x) and the feedback map from output rates to plateau
    potentials as gamma(x) = sigma(Y x); J_beta is beta's Jacobian at the hidden forward-phase rates,
    J_gamma is gamma's at beta of them (the output forward-phase rates):

        J_beta  = phi_max k_d diag(sigma'(V^1_f)) W^1,
        J_gamma = diag(sigma'(Y phi_max sigma(V^1_f))) Y,

    with V^1_f the output somata's mean forward-phase voltage, which stands for k_d (W^1 x + b^1) (the
    theorem assumes V^1_f ~ k_d V^1b_f; the bias, absent from the paper's beta, does not change its
    Jacobian). These are the expressions of the authors' code (``deep_learning.py``, ``record_eigvals``).
    ``output_weights``: the W^1 the forward phase ran with, if the network's have changed since
    (after an update); by default the network's current W^1.
    """
    if net.n_hidden != 1:
        raise ValueError(f"Theorem 1 is stated for one hidden layer; this network has {net.n_hidden}")
    v_out = forward.soma[-1]
    if v_out.dim() != 2 or v_out.shape[1] != net.sizes[-1]:
        raise ValueError(f"forward.soma[-1] must have shape (N, {net.sizes[-1]}), got {tuple(v_out.shape)}")
    p = net.params
    w = net.weights[-1].detach() if output_weights is None else output_weights
    if w.shape != net.weights[-1].shape:
        raise ValueError(f"output_weights must have shape {tuple(net.weights[-1].shape)}, got {tuple(w.shape)}")
    y = net.feedback[0]
    j_beta = (p.phi_max * p.k_d * sigmoid_derivative(v_out)).unsqueeze(2) * w
    apical = (p.phi_max * torch.sigmoid(v_out)) @ y.T
    j_gamma = sigmoid_derivative(apical).unsqueeze(2) * y
    return j_beta, j_gamma


def theorem1_eigenvalue(product: torch.Tensor) -> torch.Tensor:
    """mu, the largest eigenvalue of (I - J_beta J_gamma)^T (I - J_beta J_gamma), for ``product`` = J_beta J_gamma.

    ``product``: (..., n, n); returns (...). Theorem 1 (Guerguiev et al. 2017): if mu < 1 and the
    output error is small enough, the hidden target phi^0* = phi^0_f + gamma(phi^1_t) - gamma(phi^1_f)
    moves the output closer to its target, ||phi^1* - beta(phi^0*)||^2 < ||phi^1* - phi^1_f||^2.
    """
    if product.dim() < 2 or product.shape[-1] != product.shape[-2]:
        raise ValueError(f"J_beta J_gamma must be a square matrix (..., n, n), got shape {tuple(product.shape)}")
    identity = torch.eye(product.shape[-1], dtype=product.dtype, device=product.device)
    residual = identity - product
    return torch.linalg.eigvalsh(residual.transpose(-1, -2) @ residual)[..., -1]


class Theorem1Record:
    """Hook for :func:`dendnotes.training.fit`: Theorem 1's mu for every training example.

    After each batch it appends to ``per_example`` mu of each example's own Jacobians
    (:func:`theorem1_jacobians` at the batch's forward phase, ``rule.last_phases``, with the W^1 of
    that phase, i.e. before the batch's update, as the authors' code does), and, over the
    last ``window`` examples (the paper's Figure 5-figure supplement 1A: 100), to
    ``product_of_means`` mu of mean(J_beta) mean(J_gamma) (what the paper's caption describes) and to
    ``mean_of_products`` mu of mean(J_beta J_gamma) (what the authors' code computes);
    ``window_product`` is the latest mean(J_beta) mean(J_gamma).
    Use as ``fit(rule, data, ..., on_batch_end=Theorem1Record(rule).on_batch_end)``; nothing is
    computed unless it is passed.
    """

    def __init__(self, rule: SegregatedDendrites, window: int = 100):
        if rule.net.n_hidden != 1:
            raise ValueError(f"Theorem 1 is stated for one hidden layer; this network has {rule.net.n_hidden}")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.window = int(window)
        self.per_example: list[float] = []
        self.product_of_means: list[float] = []
        self.mean_of_products: list[float] = []
        self._recent: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (J_beta, J_gamma, product)
        self._sums: list[torch.Tensor] | None = None  # running sums of the three over the window
        self._weights = rule.net.weights[-1].detach().clone()  # W^1 before the next update
        self.window_product: torch.Tensor | None = None

    @torch.no_grad()
    def on_batch_end(self, rule: SegregatedDendrites, y: torch.Tensor) -> None:
        forward, _ = rule.last_phases
        j_beta, j_gamma = (j.double() for j in theorem1_jacobians(rule.net, forward, self._weights))
        self._weights.copy_(rule.net.weights[-1])
        products = j_beta @ j_gamma
        self.per_example.extend(theorem1_eigenvalue(products).tolist())
        for example in zip(j_beta, j_gamma, products):
            self._recent.append(example)
            self._sums = list(example) if self._sums is None else [s + e for s, e in zip(self._sums, example)]
            if len(self._recent) > self.window:
                self._sums = [s - e for s, e in zip(self._sums, self._recent.pop(0))]
            mean_beta, mean_gamma, mean_product = (s / len(self._recent) for s in self._sums)
            self.window_product = mean_beta @ mean_gamma
            self.product_of_means.append(float(theorem1_eigenvalue(self.window_product)))
            self.mean_of_products.append(float(theorem1_eigenvalue(mean_product)))


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
    step by step in torch even where the compiled phases apply (for tests and benchmarks).
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
        self.generator = KernelRandom(seed)
        self.state: NetworkState | None = None
        self._views = None
        self.last_phases: tuple[PhaseAverages, PhaseAverages] | None = None
        self.to(net.weights[0].device)

    def to(self, device) -> "SegregatedDendrites":
        """Move the network; the simulation state restarts at rest only if the device changes."""
        device = torch.device(device)
        if device != self.net.weights[0].device:
            self.net.to(device)
            self.state, self._views = None, None
        return self

    def state_dict(self) -> dict:
        """Everything training carries from one example to the next: weights, random generators, the
        simulation state (for checkpoints: :meth:`load_state_dict` restores it exactly)."""
        state = None if self.state is None else {
            "input_trace": self.state.input_trace.both.clone(), "soma": [v.clone() for v in self.state.soma],
            "traces": [t.both.clone() for t in self.state.traces]}
        return {"net": {k: v.clone() for k, v in self.net.state_dict().items()}, "generator": self.generator.state.copy(),
                "phase_rng": self.phase_rng.bit_generator.state, "state": state}

    def load_state_dict(self, saved: dict) -> None:
        with torch.no_grad():
            self.net.load_state_dict(saved["net"])
        self.generator.state[:] = saved["generator"]
        self.phase_rng.bit_generator.state = saved["phase_rng"]
        state = saved["state"]
        self.state = None if state is None else NetworkState(
            PSPTrace.stacked(state["input_trace"].clone()), [v.clone() for v in state["soma"]],
            [PSPTrace.stacked(t.clone()) for t in state["traces"]])

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
        if self.uses_kernel(x):
            shared = dict(views=self.weight_views(), inputs=kernel_inputs(x, self.net.params))
            forward = compiled_phase(self.net, self.state, x, n_forward, generator=self.generator, **shared)
            target = compiled_phase(self.net, self.state, x, n_target, teaching, generator=self.generator, **shared)
        else:
            forward = self.net.run_phase(self.state, x, n_forward, generator=self.generator)
            target = self.net.run_phase(self.state, x, n_target, teaching, generator=self.generator)
        if self.feedback_signal == "rates":  # the apical dendrites see the output rates, not spikes
            forward, target = (dataclasses.replace(phase, apical=[phase.output_rate @ y.T for y in self.net.feedback])
                               for phase in (forward, target))
        return forward, target

    def weight_views(self) -> tuple:
        """:func:`weight_views` of the network, kept while the tensors keep their memory (the kernels
        change them in place)."""
        if self._views is not None:
            tensors, key, views = self._views
            if key == [(t.data_ptr(), t.shape) for t in tensors]:
                return views
        tensors = [*self.net.weights, *self.net.biases, *self.net.feedback]
        self._views = (tensors, [(t.data_ptr(), t.shape) for t in tensors], weight_views(self.net))
        return self._views[2]

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether phases run compiled (:func:`compiled_phase`): spiking, not ``stepwise``, on the CPU."""
        return self.mode == "spiking" and not self.stepwise and fast_path_applies(self.net, x, self.generator)

    def simulate(self, state: NetworkState, x: torch.Tensor, n_steps: int, teaching=None, *, generator):
        """One spiking phase: :func:`compiled_phase`, or (``stepwise``, or off the CPU) the step-by-step
        :meth:`SegregatedNetwork.run_phase`; the two agree given the same random numbers."""
        if self.uses_kernel(x):
            return compiled_phase(self.net, state, x, n_steps, teaching, generator=generator)
        return self.net.run_phase(state, x, n_steps, teaching, generator=generator)

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        forward, target = self.phases(x, y)
        self.last_phases = (forward, target)
        updates = weight_gradients(local_deltas(self.net, forward, target), forward, self.scales())
        return output_loss(self.net, forward, target), updates

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        """Apply ``lr`` times ``compute_updates``'s updates (a plain SGD step) and return the loss.

        With the compiled path the update is applied in place by :func:`kernel.local_update`
        (only rows of W^T with a non-zero mean input), without building dense update tensors;
        :func:`dendnotes.training.fit` calls this for plain SGD.
        """
        if not self.uses_kernel(x):
            loss, updates = self.compute_updates(x, y)
            for param, update in zip(self.parameters(), updates, strict=True):
                param.add_(update, alpha=-lr)
            return float(loss)
        forward, target = self.last_phases = self.phases(x, y)
        p = self.net.params
        w_in, weights_t, biases, _ = self.weight_views()
        apical = [numpy_views(phase.apical) or (np.zeros((1, 1), dtype=w_in.dtype),) for phase in (forward, target)]
        return kernel.local_update(w_in, weights_t, biases, numpy_views(forward.inputs), numpy_views(forward.soma),
                                   apical[0], apical[1], target.output_rate.numpy(), np.array(self.scales()),
                                   float(lr), p.k_b, p.k_d, p.phi_max, NEGLIGIBLE)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Mean output somatic voltage in a single forward phase (test_phase ms from rest when spiking)."""
        self.net.check_input(x)
        self.net.refresh_feedback()
        if self.mode == "rate" or self.steady_test:
            return self.net.steady_phase(x).soma[-1]
        p = self.net.params
        generator = KernelRandom(self.seed + 1)
        outputs = []
        for rows in x.split(TEST_ROWS):  # a few rows at a time: their arrays stay in the cache
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
        if len(y) == 1:  # one example: far less overhead in numpy
            self.correct += int(forward.soma[-1].numpy().argmax() == int(y[0]))
        else:
            self.correct += int((forward.soma[-1].argmax(dim=1) == y).sum())
        for l, angles in enumerate(compiled_update_angles(rule.net, forward, target)):
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


@contextlib.contextmanager
def termination_as_interrupt():
    """Within the block, SIGTERM (``kill``) raises KeyboardInterrupt like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def save_checkpoint(path: str | Path, settings: dict, rule: SegregatedDendrites, history: History) -> None:
    """Write ``rule``'s full state and the history so far to ``path``, atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    torch.save({"settings": settings, "rule": rule.state_dict(), "history": history.to_dict()}, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: str | Path, settings: dict, rule: SegregatedDendrites,
                    evaluation: PaperEvaluation) -> History | None:
    """Restore ``rule`` from the checkpoint at ``path`` and return its history, or None if there is none.

    A checkpoint of other settings is an error (one line), not silently ignored."""
    path = Path(path)
    if not path.exists():
        return None
    saved = torch.load(path, weights_only=False)
    if saved["settings"] != settings:
        raise ValueError(f"{path} is a checkpoint of other settings ({saved['settings']}); move it away or use "
                         "the same settings")
    rule.load_state_dict(saved["rule"])
    history = History(epochs=saved["history"]["epochs"], metrics=saved["history"]["metrics"],
                      wall_time=saved["history"]["wall_time"])
    evaluation.start -= history.wall_time  # "seconds" counts from the start of the first session
    return history


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
    checkpoint: str | Path | None = None,
) -> dict:
    """The paper's MNIST experiment (Figure 6): 784-[hidden]-10, 60 epochs, its learning rates, spiking.

    ``hidden`` = () for no hidden layer, (500,) or (500, 100) for the paper's networks;
    ``dataset`` "mnist" (downloaded on first use) or "fashion-mnist". Uses the GPU when
    present (``device=None``). The default, ``batch_size=1, lr=1``, is the paper's online
    procedure: one image, two phases, one update (compiled phases on the CPU, see
    :func:`compiled_phase`). Minibatches are an option: ``batch_size``
    examples in parallel, and a step of ``lr`` times the paper's per-example step,
    applied to the batch-mean update. (Adding up the batch's updates, lr = batch_size,
    overshoots: the paper's step is tuned for online learning, and N of them at once
    drive the output neurons into the sigmoid's flat tail, where learning stops.)
    ``n_train`` / ``n_test`` use the first
    images only (for timing runs). Returns a record of the configuration, the test
    error after every epoch and the timing, and also writes it as JSON to ``out`` if
    given. ``python -m dendnotes.reproduce guerguiev2017-<sizes>`` runs it and saves
    the record with the book's other results.

    ``checkpoint``: a file where the run saves, atomically after every epoch, everything
    it needs to go on (weights, random generators, simulation state, history); if the
    file exists for the same settings, the run resumes from it, and goes on exactly as the
    uninterrupted run would have. Interrupted (Ctrl-C, SIGINT) after at least one epoch,
    the run returns the record of the epochs completed (``"interrupted": True``).
    """
    from .data import load

    x_train, y_train, x_test, y_test = load(dataset)
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_test, y_test = x_test[:n_test], y_test[:n_test]
    sizes = [x_train.shape[1], *hidden, 10]
    device = choose_device(device)
    net = SegregatedNetwork(sizes, params=DendriteParams(g_a=g_a), feedback=feedback, seed=seed)
    rule = SegregatedDendrites(net, mode=mode, learning_rates=learning_rates, seed=seed)
    settings = dict(dataset=dataset, sizes=sizes, mode=mode, feedback=feedback, g_a=g_a, batch_size=batch_size, lr=lr,
                    learning_rates=list(rule.learning_rates), seed=seed, n_train=len(x_train), n_test=len(x_test))
    evaluation = PaperEvaluation(rule)
    resume = load_checkpoint(checkpoint, settings, rule, evaluation) if checkpoint is not None else None
    latest = [resume]

    def save(epoch: int, history: History, rule: SegregatedDendrites) -> None:
        latest[0] = history
        if checkpoint is not None:
            save_checkpoint(checkpoint, settings, rule, history)

    try:
        with termination_as_interrupt():
            history = fit(rule, (x_train, y_train, x_test, y_test), epochs=epochs, batch_size=batch_size, lr=lr,
                          seed=seed, device=device, progress=progress, resume=resume, after_epoch=save,
                          **evaluation.hooks())
        interrupted = False
    except KeyboardInterrupt:
        if latest[0] is None or len(latest[0].epochs) < 2:
            raise
        history, interrupted = latest[0], True
    epochs = history.epochs[-1]
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
        "interrupted": interrupted,
    }
    if out is not None:
        write_json_atomically(Path(out), result)
        result["path"] = str(out)
    return result
