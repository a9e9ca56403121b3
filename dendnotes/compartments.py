"""The neurons of the segregated-dendrites model (Guerguiev, Lillicrap & Richards 2017).

Everything here acts on one time step or one neuron population and works on tensors
of any leading shape, so the batched simulation and the one-example-at-a-time
reference in :mod:`dendnotes.segregated_dendrites` share it.

Somatic voltage (C_m = 1, resting potential 0, time step dt, forward Euler):

    dV/dt = -g_l V + sum_k g_k (E_k - V)

where each compartment or conductance k pulls V towards its own potential E_k:
the basal dendrite (g_b, V^b) and apical dendrite (g_a, V^a) of a hidden neuron, the
dendrite (g_d, V^b) of an output neuron and, in the target phase, the teaching
conductances (g_E, E_E = 8) and (g_I, E_I = -8). Divided by g_l this is the paper's
tau dV/dt = -V + (g_b/g_l)(V^b - V) + (g_a/g_l)(V^a - V) with tau = C_m/g_l = 10 ms.
Its fixed point, V* = sum_k g_k E_k / (g_l + sum_k g_k), is the closed-form steady
state that the rate mode uses and the tests check the dynamics against.

Rates phi = phi_max sigma(V); a neuron spikes in a time step with probability phi dt.
Spike trains reach their targets filtered by the PSP kernel

    kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) Theta(t) / (tau_L - tau_s),

computed exactly with two exponential traces (no convolution over the history).
Rates are kept in spikes per ms (phi_max = 200 Hz = 0.2 /ms), so that phi dt is a
probability and a filtered spike train averages to the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from .segregated_dendrites_kernel import KernelRandom


@dataclass(frozen=True)
class DendriteParams:
    """The model's constants; the defaults are the paper's Table 1 and Methods.

    ``g_a`` is 0 in the paper's main simulations (total apical segregation); its
    Figure 9 uses 0.05 and 0.6. Times are in ms, conductances in the paper's units.
    """

    dt: float = 1.0  # time step
    phi_max_hz: float = 200.0  # maximum firing rate
    tau_s: float = 3.0  # short synaptic time constant of the PSP kernel
    tau_L: float = 10.0  # long synaptic time constant of the PSP kernel
    settle: float = 30.0  # settle time before averages start, Delta t_s
    g_b: float = 0.6  # basal dendrite -> soma (hidden layers)
    g_a: float = 0.0  # apical dendrite -> soma (hidden layers)
    g_d: float = 0.6  # dendrite -> soma (output layer)
    g_l: float = 0.1  # leak
    E_E: float = 8.0  # excitatory reversal potential of the teaching conductance
    E_I: float = -8.0  # inhibitory reversal potential of the teaching conductance
    min_phase: float = 50.0  # shortest forward or target phase
    wald_mean: float = 2.0  # extra phase length ~ Wald(mean, scale)
    wald_scale: float = 1.0
    test_phase: float = 500.0  # length of the single forward phase used for testing

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value}")
        for name in ("dt", "phi_max_hz", "tau_s", "tau_L", "g_b", "g_d", "g_l", "min_phase", "wald_mean",
                     "wald_scale", "test_phase"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.g_a < 0 or self.settle < 0:
            raise ValueError(f"g_a and settle must be non-negative, got {self.g_a} and {self.settle}")
        if self.tau_s == self.tau_L:
            raise ValueError("tau_s and tau_L must differ (the kernel divides by tau_L - tau_s)")
        if self.phi_max_hz * 1e-3 * self.dt > 1:
            raise ValueError(f"phi_max * dt = {self.phi_max_hz * 1e-3 * self.dt} exceeds 1: not a spike probability")
        if self.settle + self.dt > min(self.min_phase, self.test_phase):
            raise ValueError(f"settle time {self.settle} leaves no averaging window in a {self.min_phase} ms phase")
        largest = self.dt * max(self.g_l + self.g_b + self.g_a, self.g_l + self.g_d + 1.0)
        if largest >= 2:
            raise ValueError(f"forward Euler is unstable: dt * (total conductance) = {largest} >= 2")

    @property
    def phi_max(self) -> float:
        """Maximum rate in spikes per ms."""
        return self.phi_max_hz * 1e-3

    @property
    def decay_long(self) -> float:
        return math.exp(-self.dt / self.tau_L)

    @property
    def decay_short(self) -> float:
        return math.exp(-self.dt / self.tau_s)

    @property
    def k_b(self) -> float:
        """Steady-state gain basal -> soma, g_b / (g_l + g_b + g_a)."""
        return self.g_b / (self.g_l + self.g_b + self.g_a)

    @property
    def k_d(self) -> float:
        """Steady-state gain dendrite -> soma of an output neuron, g_d / (g_l + g_d)."""
        return self.g_d / (self.g_l + self.g_d)

    @property
    def P_hidden(self) -> float:
        """Hidden-layer error scaling factor gamma^0 = 20 / phi_max (the paper's P^0)."""
        return 20.0 / self.phi_max

    @property
    def P_output(self) -> float:
        """Output-layer error scaling factor gamma^1 = 20 / phi_max^2 (the paper's P^1)."""
        return 20.0 / self.phi_max**2

    def steps(self, duration: float) -> int:
        """Number of time steps in ``duration`` ms."""
        return int(round(duration / self.dt))


# ---------------------------------------------------------------------------
# PSP kernel
# ---------------------------------------------------------------------------


def psp_kernel(t: torch.Tensor, tau_s: float = 3.0, tau_L: float = 10.0) -> torch.Tensor:
    """kappa(t) = (exp(-t/tau_L) - exp(-t/tau_s)) Theta(t) / (tau_L - tau_s); integrates to 1."""
    t = torch.as_tensor(t)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    value = (torch.exp(-t / tau_L) - torch.exp(-t / tau_s)) / (tau_L - tau_s)
    return torch.where(t > 0, value, torch.zeros_like(value))


class PSPTrace:
    """Two exponential traces whose difference is a spike train filtered by kappa.

    Each trace follows u <- a (u + x) with a = exp(-dt / tau), so after the step that
    adds spikes x_n, ``psp()`` = sum over spikes at steps m <= n of kappa((n - m + 1) dt):
    a spike counts from the step it is emitted, with kappa(dt). The two are stored
    stacked, ``both`` = [long, short] of shape (2, ...); ``long`` and ``short`` are views.
    """

    def __init__(self, long: torch.Tensor, short: torch.Tensor):
        self.both = torch.stack([long, short])

    @classmethod
    def stacked(cls, both: torch.Tensor) -> "PSPTrace":
        """The traces from ``both`` = [long, short] (used as is, not copied)."""
        trace = cls.__new__(cls)
        trace.both = both
        return trace

    @classmethod
    def zeros(cls, shape, *, dtype=None, device=None) -> "PSPTrace":
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return cls.stacked(torch.zeros((2, *shape), dtype=dtype, device=device))

    @property
    def long(self) -> torch.Tensor:
        return self.both[0]

    @property
    def short(self) -> torch.Tensor:
        return self.both[1]

    def copy(self) -> "PSPTrace":
        return PSPTrace.stacked(self.both.clone())

    def step(self, spikes: torch.Tensor, params: DendriteParams) -> None:
        """Add this step's spikes (or expected spike counts) and decay both traces by one step."""
        self.long.add_(spikes).mul_(params.decay_long)
        self.short.add_(spikes).mul_(params.decay_short)

    def step_sparse(self, fired: torch.Tensor, params: DendriteParams) -> None:
        """Same as ``step`` for 0/1 spikes given as flat indices of the entries that fired."""
        for trace, decay in ((self.long, params.decay_long), (self.short, params.decay_short)):
            trace.mul_(decay)
            trace.view(-1).index_add_(0, fired, torch.full(fired.shape, decay, dtype=trace.dtype, device=trace.device))

    def psp(self, params: DendriteParams) -> torch.Tensor:
        """The filtered spike train s = (u_long - u_short) / (tau_L - tau_s)."""
        return (self.long - self.short) * (1.0 / (params.tau_L - params.tau_s))


def mean_psp(start: PSPTrace, end: PSPTrace, count: torch.Tensor, n_steps: int, params: DendriteParams):
    """Mean of the filtered spike train over the ``n_steps`` steps between two snapshots.

    ``start`` is the trace before the first step, ``end`` after the last, ``count`` the
    spikes added in between. Summing u_t = a (u_{t-1} + x_t) over the steps gives
    sum u = a (count + u_start - u_end) / (1 - a) for each trace, with no per-step work.
    """
    total = []
    for a, u0, u1 in ((params.decay_long, start.long, end.long), (params.decay_short, start.short, end.short)):
        total.append(a * (count + u0 - u1) / (1 - a))
    return (total[0] - total[1]) / ((params.tau_L - params.tau_s) * n_steps)


# ---------------------------------------------------------------------------
# Somatic compartment
# ---------------------------------------------------------------------------


def conductance_totals(drives, params: DendriteParams):
    """(g_l + sum_k g_k, sum_k g_k E_k) for drives [(g_k, E_k), ...]."""
    total, weighted = params.g_l, 0.0
    for g, potential in drives:
        total = total + g
        weighted = weighted + g * potential
    return total, weighted



def soma_euler_step(v: torch.Tensor, drives, params: DendriteParams) -> torch.Tensor:
    """One Euler step of dV/dt = -g_l V + sum_k g_k (E_k - V); ``drives`` = [(g_k, E_k), ...].

    In each pair one of g_k, E_k may be a tensor, the other must be a number.
    """
    total, _ = conductance_totals(drives, params)
    new = v * (1 - params.dt * total)
    for g, potential in drives:
        if isinstance(g, torch.Tensor):
            new.add_(g, alpha=params.dt * potential)
        else:
            new.add_(potential, alpha=params.dt * g)
    return new


def soma_steady_state(drives, params: DendriteParams) -> torch.Tensor:
    """Closed-form fixed point V* = sum_k g_k E_k / (g_l + sum_k g_k)."""
    total, weighted = conductance_totals(drives, params)
    return weighted / total


def hidden_drives(basal: torch.Tensor, apical: torch.Tensor | None, params: DendriteParams):
    """(conductance, potential) pairs acting on a hidden soma: basal, and apical if g_a > 0."""
    if params.g_a == 0:
        return [(params.g_b, basal)]
    if apical is None:
        raise ValueError("g_a > 0 needs the apical voltage")
    return [(params.g_b, basal), (params.g_a, apical)]


def output_drives(basal: torch.Tensor, teaching: torch.Tensor | None, params: DendriteParams):
    """Pairs acting on an output soma; ``teaching`` is the one-hot target (target phase) or None.

    In the target phase g_E = 1 for the correct unit and g_I = 1 for the others.
    """
    drives = [(params.g_d, basal)]
    if teaching is not None:
        drives += [(teaching, params.E_E), (1.0 - teaching, params.E_I)]
    return drives


def firing_rate(v: torch.Tensor, params: DendriteParams) -> torch.Tensor:
    """phi = phi_max sigma(V), in spikes per ms."""
    return params.phi_max * torch.sigmoid(v)


Generator = KernelRandom | np.random.Generator | torch.Generator | None


def uniforms(shape, generator: Generator, *, dtype: torch.dtype, device=None) -> torch.Tensor:
    """Uniform random numbers in [0, 1) of ``shape``, from ``generator``.

    A :class:`KernelRandom` (what the package uses: the compiled phases draw from it too),
    a numpy ``np.random.Generator`` or a ``torch.Generator`` (``None``: torch's global
    one). Drawn in pieces or all at once, a generator gives the same numbers in the same
    order, which lets the compiled and the step-by-step simulations share them.
    """
    if isinstance(generator, (KernelRandom, np.random.Generator)):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"a numpy generator draws float32 or float64, not {dtype}")
        values = generator.random(shape, dtype=np.float32 if dtype == torch.float32 else np.float64)
        return torch.from_numpy(values).to(device) if device is not None else torch.from_numpy(values)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a numpy or torch Generator, got {type(generator).__name__}")
    return torch.rand(shape, generator=generator, dtype=dtype, device=device)


def sample_spikes(rate: torch.Tensor, params: DendriteParams, generator: Generator) -> torch.Tensor:
    """Poisson spiking in discrete time: 1.0 (a spike) with probability rate * dt, else 0.0."""
    uniform = uniforms(rate.shape, generator, dtype=rate.dtype, device=rate.device)
    return (uniform < rate * params.dt).to(rate.dtype)


def input_spike_probabilities(rate: torch.Tensor, params: DendriteParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the inputs with a non-zero rate (the only ones that can spike), and their rate * dt."""
    flat = rate.reshape(-1)
    active = flat.nonzero().squeeze(1)
    return active, flat[active] * params.dt


def sample_input_spikes(active: torch.Tensor, probability: torch.Tensor, generator: Generator):
    """Flat indices of the active inputs that spike this step: one uniform draw per active input."""
    uniform = uniforms(probability.shape, generator, dtype=probability.dtype, device=probability.device)
    return active[uniform < probability]


def phase_lengths(rng: np.random.Generator, n: int, params: DendriteParams) -> list[int]:
    """``n`` phase lengths in steps: min_phase plus a Wald(mean, scale) extra, rounded down."""
    extra = rng.wald(params.wald_mean, params.wald_scale, size=n)
    return [params.steps(params.min_phase) + int(e // params.dt) for e in extra]


# ---------------------------------------------------------------------------
# Initial weights
# ---------------------------------------------------------------------------


def initial_weight_moments(
    n_in: int, *, v_mean: float = 3.0, v_sd: float = 6.0, bias: float = 0.8, phi_max: float = 0.2
) -> tuple[float, float]:
    """Mean and s.d. of i.i.d. weights that give dendritic voltages of mean v_mean, s.d. v_sd.

    For V = sum_j W_j s_j + b with n_in i.i.d. weights (mean w, variance u) and
    independent inputs of mean r1 and second moment r2,
    E[V] = n w r1 + b and Var[V] = n u r2 + n w^2 (r2 - r1^2). The inputs are taken to
    be presynaptic rates in the linear range of the sigmoid, s = (phi_max / 4) V_pre,
    with V_pre of mean 3 and s.d. 3; solving for (w, u) gives the moments. The defaults
    put most voltages "between -6 and 12 V" (mean 3, s.d. 6), the paper's description,
    and match the spread that the authors' code draws.
    """
    slope = phi_max / 4
    r1 = slope * 3.0
    r2 = slope**2 * (3.0**2 + 3.0**2)
    w = (v_mean - bias) / (n_in * r1)
    u = (v_sd**2 - n_in * w**2 * (r2 - r1**2)) / (n_in * r2)
    if u <= 0:
        raise ValueError(f"no weight spread gives voltage s.d. {v_sd} with {n_in} inputs")
    return w, math.sqrt(u)


def uniform_weights(shape, mean: float, sd: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform weights on [mean - sqrt(3) sd, mean + sqrt(3) sd] (float64)."""
    half_width = math.sqrt(3.0) * sd
    return mean + half_width * (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1)
