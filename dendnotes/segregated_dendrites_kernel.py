"""Compiled phases and online updates of the spiking segregated-dendrites network.

The same time steps as :meth:`dendnotes.segregated_dendrites.SegregatedNetwork.run_phase`
(the reference), run for a whole phase in one call of a numba-compiled function, with any
apical coupling g_a: input spikes add only the weight rows of the inputs that fired, each
layer's basal potential is kept filtered in the layer's own space (W u for the PSP traces u
of the layer below, so a spike adds one row of W^T), a hidden neuron computes its sigmoid
only when its uniform number could make it spike (u < phi_max dt), and nothing is allocated
per step. :func:`local_update` then applies the paper's online weight change in place, on
the rows of W^T whose presynaptic mean input is non-zero.

Random numbers come from :class:`KernelRandom`, a seeded xoshiro256+ generator whose state
is a small numpy array (saved and restored by checkpoints). Python code draws from the same
stream with ``KernelRandom.random``, so the reference, fed the same generator, consumes the
same numbers in the same order and gives the same averages and updates up to floating-point
rounding (tests/test_segregated_dendrites.py). Compiled once per machine (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# constants passed to the phase kernel, in this order (float64)
CONSTANTS = ("decay_long", "decay_short", "psp_scale", "phi_max", "dt", "g_l", "g_b", "g_a", "g_d", "E_E", "E_I",
             "tiny_trace")

_MASK32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _xoshiro(s0, s1, s2, s3):
    """One step of xoshiro256+ (Blackman & Vigna): (64 random bits, the next state)."""
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return result, s0, s1, s2, s3


@njit(cache=True)
def _next64(state):
    """The next 64 random bits; state[0:4] is the generator's state."""
    result, state[0], state[1], state[2], state[3] = _xoshiro(state[0], state[1], state[2], state[3])
    return result


@njit(cache=True)
def _next32(state):
    """The next 32 random bits: each 64-bit draw gives two (state[4] holds the second, state[5] says so)."""
    if state[5] != 0:
        state[5] = np.uint64(0)
        return state[4]
    bits = _next64(state)
    state[4] = bits & _MASK32
    state[5] = np.uint64(1)
    return bits >> np.uint64(32)


@njit(cache=True)
def uniform32(state):
    """A float32 uniform in [0, 1): 24 random bits."""
    return np.float32(_next32(state) >> np.uint64(8)) * np.float32(2.0**-24)


@njit(cache=True)
def uniform64(state):
    """A float64 uniform in [0, 1): 53 random bits from two 32-bit draws."""
    high = _next32(state) >> np.uint64(5)
    low = _next32(state) >> np.uint64(6)
    return (np.float64(high) * 67108864.0 + np.float64(low)) * 2.0**-53


@njit(cache=True)
def _fill32(state, out, n):
    """out[:n] = n float32 uniforms, the same as n calls of uniform32, with the state in registers."""
    i = 0
    if n > 0 and state[5] != 0:
        out[0] = uniform32(state)
        i = 1
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    unit = np.float32(2.0**-24)
    while i + 1 < n:
        bits, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
        out[i] = np.float32(bits >> np.uint64(40)) * unit
        out[i + 1] = np.float32((bits & _MASK32) >> np.uint64(8)) * unit
        i += 2
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    if i < n:
        out[i] = uniform32(state)


@njit(cache=True)
def _fill64(state, out, n):
    for i in range(n):
        out[i] = uniform64(state)


@njit(cache=True)
def _fill(state, out, n, use_float64):
    if use_float64:
        _fill64(state, out, n)
    else:
        _fill32(state, out, n)


@njit(cache=True)
def _seed_state(seed, state):
    """splitmix64 of the seed fills the four state words (the generator's recommended seeding)."""
    z = np.uint64(seed)
    for i in range(4):
        z += np.uint64(0x9E3779B97F4A7C15)
        x = z
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state[i] = x ^ (x >> np.uint64(31))
    state[4] = np.uint64(0)
    state[5] = np.uint64(0)


class KernelRandom:
    """A seeded uniform generator shared by the compiled kernels and Python code.

    ``random(shape, dtype)`` draws like numpy's ``Generator.random``; the kernels draw
    from the same stream, one number at a time, so a phase gets the same numbers whether
    it is drawn in Python (the reference) or inside a kernel. ``state`` (6 uint64) is the
    whole state: copy it to save the generator, assign it to restore.
    """

    def __init__(self, seed: int = 0):
        self.state = np.zeros(6, dtype=np.uint64)
        _seed_state(int(seed), self.state)

    def random(self, shape, dtype=np.float64) -> np.ndarray:
        out = np.empty(int(np.prod(shape)), dtype=dtype)
        if out.dtype == np.float32:
            _fill32(self.state, out, out.shape[0])
        elif out.dtype == np.float64:
            _fill64(self.state, out, out.shape[0])
        else:
            raise ValueError(f"KernelRandom draws float32 or float64, not {out.dtype}")
        return out.reshape(shape)


@njit(cache=True, fastmath={"contract"})
def _project(traces, weights_t, scale, out):
    """out[b] = scale * traces[b] @ weights_t, over the non-zero entries of traces[b]."""
    out[:] = 0.0
    for b in range(traces.shape[0]):
        for j in range(traces.shape[1]):
            u = traces[b, j]
            if u != 0.0:
                w = scale * u
                for i in range(out.shape[1]):
                    out[b, i] += w * weights_t[j, i]


@njit(cache=True, fastmath={"contract"})
def _add_rows(weights_t, fired, n_fired, out):
    """out += sum of rows weights_t[j] for the n_fired indices j in fired (out: 1-D)."""
    for k in range(n_fired):
        row = weights_t[fired[k]]
        for i in range(row.shape[0]):
            out[i] += row[i]


@njit(cache=True, fastmath={"contract"})
def run_phase(n_steps, settle, active, probability, n_in, w_in, weights_t, biases, feedback, teaching, in_long,
              in_short, somata, longs, shorts, constants, rng, use_float64, mean_inputs, mean_soma, mean_apical,
              mean_out_psp, mean_rate):
    """Simulate one phase of ``n_steps`` steps in place; write the averages after the settle time.

    ``active`` / ``probability``: flat indices (row * n_in + input) of the inputs with a
    non-zero rate and their spike probability per step. ``w_in`` = W^0 transposed,
    ``weights_t`` the other layers' W^T (n_l, n_{l+1}), ``biases`` every layer's,
    ``feedback`` every hidden layer's Y (n_l, n_out), ``teaching`` (batch, n_out) one-hot
    or empty (forward phase). State: ``in_long``/``in_short`` (batch, n_in) input traces,
    ``somata``, ``longs``, ``shorts`` every layer's (batch, n) voltages and traces.
    Outputs (batch, n): ``mean_inputs[l]`` the mean filtered spike train entering layer l,
    ``mean_soma[l]``, ``mean_apical[l]`` (of the mean output PSP of the previous steps),
    ``mean_out_psp``, ``mean_rate`` (output phi). The step is the reference's: input spikes,
    then each layer bottom to top (dendrites, Euler soma, spikes with one uniform per
    neuron in row-major order, traces), the apical dendrites seeing the output's PSP of
    the previous step.
    """
    decay_long, decay_short, psp_scale, phi_max, dt = (constants[0], constants[1], constants[2], constants[3],
                                                       constants[4])
    g_l, g_b, g_a, g_d, E_E, E_I, tiny = (constants[5], constants[6], constants[7], constants[8], constants[9],
                                          constants[10], constants[11])
    dtype = in_long.dtype
    a_long, a_short = dtype.type(decay_long), dtype.type(decay_short)
    scale = dtype.type(psp_scale)
    phi_dt = dtype.type(phi_max * dt)
    n_layers = len(somata)
    n_hidden = n_layers - 1
    batch = in_long.shape[0]
    teach = teaching.shape[0] > 0
    n_out = somata[n_layers - 1].shape[1]
    widest = n_in
    for l in range(n_layers):
        widest = max(widest, somata[l].shape[1])
    # each layer's basal input from its presynaptic traces, W u_long * scale and W u_short * scale
    z_long, z_short = [], []
    for l in range(n_layers):
        zl = np.zeros((batch, somata[l].shape[1]), dtype=dtype)
        zs = np.zeros((batch, somata[l].shape[1]), dtype=dtype)
        if l == 0:
            _project(in_long, w_in, scale, zl)
            _project(in_short, w_in, scale, zs)
        else:
            _project(longs[l - 1], weights_t[l - 1], scale, zl)
            _project(shorts[l - 1], weights_t[l - 1], scale, zs)
        z_long.append(zl)
        z_short.append(zs)
    drive = np.zeros((batch, widest), dtype=dtype)
    fired = np.empty((batch, widest), dtype=np.int64)
    n_fired = np.zeros(batch, dtype=np.int64)
    uniform = np.empty(widest, dtype=dtype)
    n_active = active.shape[0]
    uniform_in = np.empty(n_active, dtype=dtype)
    out_psp = np.empty((batch, n_out), dtype=dtype)
    for b in range(batch):
        for i in range(n_out):
            out_psp[b, i] = (longs[n_layers - 1][b, i] - shorts[n_layers - 1][b, i]) * scale
    apical = np.zeros(widest, dtype=dtype)
    # snapshots of the traces when averaging starts, and spike counts, give the mean PSPs (mean_psp)
    start_long = [np.zeros((batch, n_in), dtype=dtype)]
    start_short = [np.zeros((batch, n_in), dtype=dtype)]
    counts = [np.zeros((batch, n_in), dtype=dtype)]
    input_count = counts[0]
    for l in range(n_hidden):
        start_long.append(np.zeros((batch, somata[l].shape[1]), dtype=dtype))
        start_short.append(np.zeros((batch, somata[l].shape[1]), dtype=dtype))
        counts.append(np.zeros((batch, somata[l].shape[1]), dtype=dtype))
    for l in range(n_layers):
        mean_soma[l][:] = 0.0
    mean_out_psp[:] = 0.0
    mean_rate[:] = 0.0
    one = dtype.type(1.0)
    apical_gain = dtype.type(dt * g_a)
    phi_max_t, dt_t = dtype.type(phi_max), dtype.type(dt)
    teach_e, teach_i = dtype.type(dt * E_E), dtype.type(dt * E_I)
    for step in range(n_steps):
        averaging = step >= settle
        if step == settle:
            start_long[0][:] = in_long
            start_short[0][:] = in_short
            for l in range(n_hidden):
                start_long[l + 1][:] = longs[l]
                start_short[l + 1][:] = shorts[l]
        if averaging:
            for b in range(batch):
                for i in range(n_out):
                    mean_out_psp[b, i] += out_psp[b, i]
        # input spikes: one uniform per active input, in flat order
        n_fired[:] = 0
        _fill(rng, uniform_in, n_active, use_float64)
        for k in range(n_active):
            if uniform_in[k] < probability[k]:
                b = active[k] // n_in
                fired[b, n_fired[b]] = active[k] - b * n_in
                n_fired[b] += 1
        for b in range(batch):
            il_b, is_b = in_long[b], in_short[b]
            for j in range(n_in):
                il_b[j] *= a_long
                is_b[j] *= a_short
            for k in range(n_fired[b]):
                j = fired[b, k]
                in_long[b, j] += a_long
                in_short[b, j] += a_short
                if averaging:
                    input_count[b, j] += one
        for l in range(n_layers):
            n = somata[l].shape[1]
            hidden = l < n_hidden
            w = w_in if l == 0 else weights_t[l - 1]
            bias = biases[l]
            v_all, zl, zs = somata[l], z_long[l], z_short[l]
            trace_long, trace_short, soma_sum = longs[l], shorts[l], mean_soma[l]
            count = counts[l + 1] if hidden else counts[0]  # (the output layer counts nothing)
            if hidden:
                leak = one - dtype.type(dt * (g_l + g_b + g_a))
            else:
                leak = one - dtype.type(dt * (g_l + g_d + (1.0 if teach else 0.0)))
            gain = dtype.type(dt * (g_b if hidden else g_d))
            for b in range(batch):
                # row views: 1-D loops that the compiler vectorizes
                v_b, zl_b, zs_b, d_b = v_all[b], zl[b], zs[b], drive[b]
                tl_b, ts_b, sum_b = trace_long[b], trace_short[b], soma_sum[b]
                d_b[:n] = 0.0
                _add_rows(w, fired[b], n_fired[b], d_b)
                if hidden and g_a > 0:
                    y = feedback[l]
                    for i in range(n):
                        acc = dtype.type(0.0)
                        for o in range(n_out):
                            acc += out_psp[b, o] * y[i, o]
                        apical[i] = acc
                for i in range(n):
                    zl_b[i] = (zl_b[i] + scale * d_b[i]) * a_long
                    zs_b[i] = (zs_b[i] + scale * d_b[i]) * a_short
                    v_b[i] = v_b[i] * leak + gain * ((zl_b[i] - zs_b[i]) + bias[i])
                    tl_b[i] *= a_long
                    ts_b[i] *= a_short
                if hidden and g_a > 0:
                    for i in range(n):
                        v_b[i] += apical_gain * apical[i]
                if not hidden and teach:
                    for i in range(n):
                        g_e = teaching[b, i]
                        v_b[i] += teach_e * g_e + teach_i * (one - g_e)
                if averaging:
                    for i in range(n):
                        sum_b[i] += v_b[i]
                _fill(rng, uniform, n, use_float64)
                n_fired[b] = 0
                if hidden:
                    for i in range(n):
                        u = uniform[i]
                        if u < phi_dt:  # else no rate can make it spike: the sigmoid is needed only here
                            if u < phi_dt / (one + np.exp(-v_b[i])):
                                fired[b, n_fired[b]] = i
                                n_fired[b] += 1
                else:
                    for i in range(n):
                        rate = phi_max_t / (one + np.exp(-v_b[i]))
                        if uniform[i] < rate * dt_t:
                            fired[b, n_fired[b]] = i
                            n_fired[b] += 1
                        if averaging:
                            mean_rate[b, i] += rate
                for k in range(n_fired[b]):
                    i = fired[b, k]
                    tl_b[i] += a_long
                    ts_b[i] += a_short
                    if averaging and hidden:
                        count[b, i] += one
        for b in range(batch):
            for i in range(n_out):
                out_psp[b, i] = (longs[n_layers - 1][b, i] - shorts[n_layers - 1][b, i]) * scale
    n_mean = n_steps - settle
    inverse = one / dtype.type(n_mean)
    for l in range(n_layers):
        m = mean_soma[l]
        m *= inverse
    mean_out_psp *= inverse
    mean_rate *= inverse
    for l in range(n_hidden):
        mean_apical[l][:] = 0.0
        y = feedback[l]
        for b in range(batch):
            for i in range(y.shape[0]):
                acc = dtype.type(0.0)
                for o in range(n_out):
                    acc += mean_out_psp[b, o] * y[i, o]
                mean_apical[l][b, i] = acc
    # mean PSP from the spike counts: sum u = a (count + u_start - u_end) / (1 - a), per trace
    c_long = a_long / (one - a_long)
    c_short = a_short / (one - a_short)
    for l in range(n_layers):
        end_long = in_long if l == 0 else longs[l - 1]
        end_short = in_short if l == 0 else shorts[l - 1]
        for b in range(batch):
            for j in range(end_long.shape[1]):
                count = counts[l][b, j]
                total_long = c_long * (count + start_long[l][b, j] - end_long[b, j])
                total_short = c_short * (count + start_short[l][b, j] - end_short[b, j])
                mean_inputs[l][b, j] = (total_long - total_short) / (dtype.type(psp_scale ** -1) * dtype.type(n_mean))
    # traces of spikes long ago are set to 0 (see NetworkState.flush_tiny_traces)
    t = dtype.type(tiny)
    for b in range(batch):
        for j in range(n_in):
            if in_long[b, j] <= t:
                in_long[b, j] = 0.0
            if in_short[b, j] <= t:
                in_short[b, j] = 0.0
    for l in range(n_layers):
        for b in range(batch):
            for i in range(longs[l].shape[1]):
                if longs[l][b, i] <= t:
                    longs[l][b, i] = 0.0
                if shorts[l][b, i] <= t:
                    shorts[l][b, i] = 0.0


@njit(cache=True, fastmath={"contract"})
def local_update(w_in, weights_t, biases, forward_inputs, forward_soma, forward_apical, target_apical,
                 target_rate, scales, lr, k_b, k_d, phi_max, negligible):
    """Apply W^l <- W^l - lr * scales[l] * mean_b delta^l_b s^l_b^T (and the biases) in place; return L^1.

    The deltas are :func:`dendnotes.segregated_dendrites.local_deltas`'s (the paper's
    Equations 28 and 33), scaled like :func:`~dendnotes.segregated_dendrites.weight_gradients`
    (entries of at most ``negligible`` set to 0); only rows of W^T whose presynaptic mean
    input is non-zero in some example are touched.
    """
    n_layers = len(biases)
    n_hidden = n_layers - 1
    dtype = w_in.dtype
    batch = forward_soma[0].shape[0]
    one = dtype.type(1.0)
    loss = 0.0
    for l in range(n_layers):
        n = biases[l].shape[0]
        delta = np.zeros((batch, n), dtype=dtype)
        factor = dtype.type(scales[l] / batch)
        for b in range(batch):
            for i in range(n):
                v = forward_soma[l][b, i]
                s = one / (one + np.exp(-v))
                slope = s * (one - s)
                if l < n_hidden:
                    alpha_f = one / (one + np.exp(-forward_apical[l][b, i]))
                    alpha_t = one / (one + np.exp(-target_apical[l][b, i]))
                    d = -dtype.type(k_b) * (alpha_t - alpha_f) * dtype.type(phi_max) * slope
                else:
                    error = target_rate[b, i] - dtype.type(phi_max) * s
                    loss += (target_rate[b, i] / dtype.type(phi_max) - s) ** 2 / batch
                    d = -dtype.type(k_d * phi_max) * error * slope
                d = d * factor
                delta[b, i] = d if abs(d) > negligible else dtype.type(0.0)
        if scales[l] == 0:
            continue
        rate = dtype.type(lr)
        w = w_in if l == 0 else weights_t[l - 1]
        inputs = forward_inputs[l]
        for j in range(inputs.shape[1]):
            for b in range(batch):
                s = inputs[b, j]
                if s > negligible:
                    c = rate * s
                    for i in range(n):
                        w[j, i] -= c * delta[b, i]
        for i in range(n):
            total = dtype.type(0.0)
            for b in range(batch):
                total += delta[b, i]
            biases[l][i] -= rate * total
    return loss


@njit(cache=True, fastmath={"contract"})
def hidden_update_angles(weights_t, forward_soma, forward_apical, target_apical, target_rate, k_b, k_d, phi_max,
                         angles):
    """angles[l, b]: degrees between hidden layer l's local update and backprop's for example b, as
    :func:`dendnotes.segregated_dendrites.update_angles` (the reference) computes them."""
    n_layers = len(forward_soma)
    batch = forward_soma[0].shape[0]
    for b in range(batch):
        n_out = forward_soma[n_layers - 1].shape[1]
        above = np.empty(n_out)
        for i in range(n_out):
            s = 1.0 / (1.0 + np.exp(-np.float64(forward_soma[n_layers - 1][b, i])))
            above[i] = -k_d * phi_max * (target_rate[b, i] - phi_max * s) * s * (1.0 - s)
        for l in range(n_layers - 2, -1, -1):
            w = weights_t[l]  # W^{l+1} transposed: (n_l, n_{l+1})
            n = w.shape[0]
            backprop = np.empty(n)
            dot, norm_local, norm_bp = 0.0, 0.0, 0.0
            for j in range(n):
                acc = 0.0
                for i in range(w.shape[1]):
                    acc += above[i] * w[j, i]
                s = 1.0 / (1.0 + np.exp(-np.float64(forward_soma[l][b, j])))
                slope = s * (1.0 - s)
                backprop[j] = acc * k_b * phi_max * slope
                alpha_f = 1.0 / (1.0 + np.exp(-np.float64(forward_apical[l][b, j])))
                alpha_t = 1.0 / (1.0 + np.exp(-np.float64(target_apical[l][b, j])))
                local = -k_b * (alpha_t - alpha_f) * phi_max * slope
                dot += local * backprop[j]
                norm_local += local * local
                norm_bp += backprop[j] * backprop[j]
            cosine = dot / max(np.sqrt(norm_local) * np.sqrt(norm_bp), 1e-30)
            angles[l, b] = np.degrees(np.arccos(min(1.0, max(-1.0, cosine))))
            above = backprop
