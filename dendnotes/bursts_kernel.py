"""Compiled time-step loop of the spiking XOR circuit (:class:`dendnotes.bursts.SpikingXOR`).

The same step as ``SpikingXOR.step`` (the reference), run for many steps in one call of a
numba-compiled function: synaptic input is summed only over the presynaptic neurons that
fired, weights change only in the columns of postsynaptic neurons that fired (and, for the
homeostatic growth, the rows of presynaptic neurons that fired), and nothing is allocated
per step. Given the same uniform random numbers it gives the reference's spikes and, up to
rounding, its weights (tests/test_bursts.py). Compiled once per machine (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath={"contract"})
def _outer_columns(weights, pre, post, columns, scale):
    """weights[:, i] += scale * sum_b pre[b, :] post[b, i] for i in columns (one copy's rows b)."""
    n_pre = weights.shape[0]
    acc = np.empty(n_pre, dtype=np.float32)
    for i in columns:
        acc[:] = 0.0
        for b in range(pre.shape[0]):
            s = post[b, i]
            for j in range(n_pre):
                acc[j] = pre[b, j] * s + acc[j]
        for j in range(n_pre):
            weights[j, i] += np.float32(scale) * acc[j]


@njit(cache=True, fastmath={"contract"})
def _outer_rows(weights, pre, post, rows, scale):
    """weights[j, :] += scale * sum_b pre[b, j] post[b, :] for j in rows (one copy's rows b)."""
    n_post = weights.shape[1]
    acc = np.empty(n_post, dtype=np.float32)
    for j in rows:
        acc[:] = 0.0
        for b in range(pre.shape[0]):
            s = pre[b, j]
            for i in range(n_post):
                acc[i] = s * post[b, i] + acc[i]
        for i in range(n_post):
            weights[j, i] += np.float32(scale) * acc[i]


@njit(cache=True)
def _fired(spikes):
    """Indices of the columns of a (rows, n) 0/1 array that are non-zero in some row."""
    found = np.zeros(spikes.shape[1], dtype=np.bool_)
    for b in range(spikes.shape[0]):
        for i in range(spikes.shape[1]):
            if spikes[b, i] != 0:
                found[i] = True
    return np.nonzero(found)[0]


@njit(cache=True)
def xor_steps(uniforms, learn, n, rows_per_copy, v_soma, v_dend, since_event, countdown, events, bursts,
              soma_drive_scaled, dend_drive_scaled, w1, w2, feedback, p_reference, pre_trace, event_trace,
              burst_trace, counts, decay_soma, decay_dend, max_event_probability, refractory_steps, delay_low,
              delay_count, decay_pre, decay_avg, rate_scale, eta_hidden, eta_output, homeostasis, rate_low,
              rate_high):
    """Run len(uniforms) steps in place. Arrays are float32 (batch, 5n) unless said otherwise:
    events, bursts (last step's, 0/1), since_event and countdown (int32), w1 (copies, 2n, 2n),
    w2 (copies, 2n, n), feedback (n, 2n); counts adds up the events."""
    batch, size = v_soma.shape
    soma_jump = np.zeros(size, dtype=np.float32)
    dend_jump = np.zeros(2 * n, dtype=np.float32)
    last_events = np.empty_like(events)
    signal = np.zeros((batch, size), dtype=np.float32)
    too_low = np.zeros((batch, size), dtype=np.float32)
    f32 = np.float32
    for t in range(uniforms.shape[0]):
        last_events[:] = events
        for b in range(batch):
            c = b // rows_per_copy
            # synaptic input from last step's spikes (only those rows are read), then one step of the neurons
            soma_jump[:] = 0.0
            for j in range(2 * n):
                if events[b, j] != 0:
                    for i in range(2 * n):
                        soma_jump[2 * n + i] = w1[c, j, i] + soma_jump[2 * n + i]
            for j in range(2 * n):
                if events[b, 2 * n + j] != 0:
                    for i in range(n):
                        soma_jump[4 * n + i] = w2[c, j, i] + soma_jump[4 * n + i]
            dend_jump[:] = 0.0
            for k in range(n):
                x = bursts[b, 4 * n + k] - f32(p_reference) * events[b, 4 * n + k]
                if x != 0:
                    for i in range(2 * n):
                        dend_jump[i] = x * feedback[k, i] + dend_jump[i]
            _neurons(t, b, n, uniforms, v_soma, v_dend, since_event, countdown, events, bursts,
                     soma_drive_scaled, dend_drive_scaled, soma_jump, dend_jump, decay_soma, decay_dend,
                     max_event_probability, refractory_steps, delay_low, delay_count)
        if learn:
            _learn(n, rows_per_copy, events, bursts, last_events, since_event, w1, w2, pre_trace, event_trace,
                   burst_trace, signal, too_low, decay_avg, rate_scale, eta_hidden, eta_output, homeostasis,
                   rate_low, rate_high)
        for b in range(batch):
            for i in range(size):
                e, s = events[b, i], bursts[b, i]
                pre_trace[b, i] = pre_trace[b, i] * f32(decay_pre) + e
                event_trace[b, i] = event_trace[b, i] * f32(decay_avg) + e
                if s != 0:
                    burst_trace[b, i] = burst_trace[b, i] * f32(decay_avg) + f32(decay_avg) ** f32(since_event[b, i])
                else:
                    burst_trace[b, i] = burst_trace[b, i] * f32(decay_avg)
                counts[b, i] += e


@njit(cache=True)
def _neurons(t, b, n, uniforms, v_soma, v_dend, since_event, countdown, events, bursts, soma_drive_scaled,
             dend_drive_scaled, soma_jump, dend_jump, decay_soma, decay_dend, max_event_probability,
             refractory_steps, delay_low, delay_count):
    """One step of row b's neurons, as ``BurstingPopulation.step``."""
    f32 = np.float32
    for i in range(v_soma.shape[1]):
        v_soma[b, i] = (v_soma[b, i] * f32(decay_soma) + soma_drive_scaled[b, i]) + soma_jump[i]
        w = v_dend[b, i] * f32(decay_dend) + dend_drive_scaled[b, i]
        if 2 * n <= i < 4 * n:
            w = w + dend_jump[i - 2 * n]
        v_dend[b, i] = w
        u = uniforms[t, b, i]
        since_event[b, i] += 1
        burst = countdown[b, i] == 1
        if countdown[b, i] > 0:
            countdown[b, i] -= 1
        event = False
        if since_event[b, i] >= refractory_steps and u < f32(max_event_probability):  # else no event: skip exp
            q = f32(max_event_probability) * (f32(1.0) / (f32(1.0) + np.exp(-v_soma[b, i])))
            if u < q:
                event = True
                threshold = q * (f32(1.0) / (f32(1.0) + np.exp(-v_dend[b, i])))
                if u < threshold:
                    countdown[b, i] = delay_low + min(int(u / threshold * f32(delay_count)), delay_count - 1)
                since_event[b, i] = 0
        events[b, i] = f32(1.0) if event else f32(0.0)
        bursts[b, i] = f32(1.0) if burst else f32(0.0)


@njit(cache=True)
def _learn(n, rows_per_copy, events, bursts, last_events, since_event, w1, w2, pre_trace, event_trace, burst_trace,
           signal, too_low, decay_avg, rate_scale, eta_hidden, eta_output, homeostasis, rate_low, rate_high):
    """Burst-dependent plasticity and homeostasis of W1 and W2, as ``SpikingXOR.learn``."""
    f32 = np.float32
    batch, size = events.shape
    for b in range(batch):
        for i in range(2 * n, size):
            e, s = events[b, i], bursts[b, i]
            p_bar = burst_trace[b, i] / max(event_trace[b, i], f32(1e-6))
            value = s - p_bar * e
            low = f32(0.0)
            if homeostasis > 0:
                rate = event_trace[b, i] * f32(1 - decay_avg) * f32(rate_scale)
                low = f32(homeostasis) * max(f32(rate_low) - rate, f32(0.0))
                high = f32(homeostasis) * max(rate - f32(rate_high), f32(0.0)) / max(rate, f32(1e-3))
                value = value - high * (e + s)
            signal[b, i] = value
            too_low[b, i] = low
    for c in range(w1.shape[0]):
        rows = slice(c * rows_per_copy, (c + 1) * rows_per_copy)
        for post, source, weights, eta in ((slice(2 * n, 4 * n), slice(0, 2 * n), w1[c], eta_hidden),
                                           (slice(4 * n, 5 * n), slice(2 * n, 4 * n), w2[c], eta_output)):
            if eta == 0:
                continue
            post_signal = signal[rows, post]
            _outer_columns(weights, pre_trace[rows, source], post_signal, _fired(post_signal), eta)
            if homeostasis > 0:
                pre_events = last_events[rows, source]
                _outer_rows(weights, pre_events, too_low[rows, post], _fired(pre_events), eta)
