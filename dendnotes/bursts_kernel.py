"""Compiled time-step loop of the spiking XOR circuit (:class:`dendnotes.bursts.SpikingXOR`).

The same step as ``SpikingXOR.step`` (the reference), run for many steps in one call of a
numba-compiled function. Synaptic input is summed only over the presynaptic neurons that
fired (kept as lists of indices); weights change only in the columns of postsynaptic neurons
that fired (and, for the homeostatic growth, the rows of presynaptic neurons that fired, in
the columns of neurons below their lower rate bound); without plasticity the spike traces
are brought up to date only when their neuron spikes (and at the end of the call), and
nothing is allocated per step.

Random numbers. Given the reference's uniforms (one per neuron and step) the kernel gives the
reference's spikes and, up to rounding, its weights (tests/test_bursts.py). Without them it
draws its own, seeded, from numba's generator, and draws only what the step needs: an event
is possible only when u < q_max (the event probability at saturation), so each neuron waits a
geometric number of steps for its next such "candidate" step, at which u is uniform on
[0, q_max). The candidates are the steps with u < q_max of the one-uniform-per-step scheme,
so the spikes have the same statistics, from about a tenth of the random numbers.
Compiled once per machine (cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def geometric_wait(log_miss):
    """Steps until the next candidate step (>= 1) when each step is one with probability
    1 - exp(log_miss)."""
    return 1 + int(np.log(1.0 - np.random.random()) / log_miss)


@njit(cache=True)
def seed_and_draw_waits(seed, shape0, shape1, max_event_probability):
    """Seed numba's generator and draw every neuron's wait for its first candidate step."""
    np.random.seed(seed)
    waits = np.empty((shape0, shape1), dtype=np.int32)
    log_miss = np.log1p(-max_event_probability)
    for b in range(shape0):
        for i in range(shape1):
            waits[b, i] = geometric_wait(log_miss)
    return waits


@njit(cache=True)
def xor_steps(n_steps, seed, uniforms, waits, learn, n, rows_per_copy, v_soma, v_dend, since_event, countdown,
              events, bursts, soma_drive_scaled, dend_drive_scaled, w1, w2, feedback, p_reference, pre_trace,
              event_trace, burst_trace, counts, decay_soma, decay_dend, max_event_probability, refractory_steps,
              delay_low, delay_count, decay_pre, decay_avg, rate_scale, eta_hidden, eta_output, homeostasis,
              rate_low, rate_high, bias_hidden, bias_output):
    """Run n_steps steps in place. Arrays are float32 (batch, 5n) unless said otherwise:
    events, bursts (last step's, 0/1), since_event, countdown and waits (int32), w1 (copies, 2n, 2n),
    w2 (copies, 2n, n), feedback (n, 2n); counts adds up the events. ``uniforms`` (n_steps, batch, 5n)
    decide the spikes as in the reference; if it has no rows, the kernel seeds numba's generator with
    ``seed`` and draws candidate steps (``waits`` holds each neuron's steps to its next one).
    Biases (soma_drive_scaled) learn at bias_hidden, bias_output times the summed plasticity signal."""
    batch, size = v_soma.shape
    f32 = np.float32
    draw = uniforms.shape[0] == 0
    if draw:
        np.random.seed(seed)
    log_miss = np.log1p(-max_event_probability)
    soma_jump = np.zeros(size, dtype=np.float32)
    dend_jump = np.zeros(2 * n, dtype=np.float32)
    # this step's and last step's spikes as index lists per row (events in 0..size, bursts in 0..size)
    event_list = np.empty((batch, size), dtype=np.int32)
    event_count = np.zeros(batch, dtype=np.int32)
    burst_list = np.empty((batch, size), dtype=np.int32)
    burst_count = np.zeros(batch, dtype=np.int32)
    for b in range(batch):
        for i in range(size):
            if events[b, i] != 0:
                event_list[b, event_count[b]] = i
                event_count[b] += 1
            if bursts[b, i] != 0:
                burst_list[b, burst_count[b]] = i
                burst_count[b] += 1
    last_event_list = np.empty_like(event_list)
    last_event_count = np.zeros(batch, dtype=np.int32)
    last_events = np.zeros_like(events)
    done = np.zeros((batch, size), dtype=np.int64)  # steps already applied to each neuron's traces
    signal = np.zeros((batch, size), dtype=np.float32)
    too_low = np.zeros((batch, size), dtype=np.float32)
    for t in range(n_steps):
        for b in range(batch):
            c = b // rows_per_copy
            # synaptic input from last step's spikes, then one step of the neurons
            soma_jump[2 * n:] = 0.0
            for k in range(event_count[b]):
                j = event_list[b, k]
                if j < 2 * n:
                    for i in range(2 * n):
                        soma_jump[2 * n + i] = w1[c, j, i] + soma_jump[2 * n + i]
                elif j < 4 * n:
                    for i in range(n):
                        soma_jump[4 * n + i] = w2[c, j - 2 * n, i] + soma_jump[4 * n + i]
            dend_jump[:] = 0.0
            _feedback_jump(b, n, events, bursts, event_list, event_count, burst_list, burst_count, feedback,
                           p_reference, dend_jump)
            # last step's spikes leave the dense arrays (kept for learning) and the lists
            last_event_count[b] = event_count[b]
            for k in range(event_count[b]):
                j = event_list[b, k]
                last_event_list[b, k] = j
                events[b, j] = 0.0
            for k in range(burst_count[b]):
                bursts[b, burst_list[b, k]] = 0.0
            event_count[b] = 0
            burst_count[b] = 0
            _neurons(t, b, n, draw, uniforms, waits, log_miss, v_soma, v_dend, since_event, countdown, events,
                     bursts, event_list, event_count, burst_list, burst_count, soma_drive_scaled, dend_drive_scaled,
                     soma_jump, dend_jump, decay_soma, decay_dend, max_event_probability, refractory_steps,
                     delay_low, delay_count)
        if learn:
            for b in range(batch):
                for k in range(last_event_count[b]):
                    last_events[b, last_event_list[b, k]] = 1.0
            _learn(n, rows_per_copy, events, bursts, last_events, last_event_list, last_event_count, w1, w2,
                   pre_trace, event_trace, burst_trace, signal, too_low, soma_drive_scaled, decay_avg, rate_scale,
                   eta_hidden, eta_output, homeostasis, rate_low, rate_high, bias_hidden, bias_output)
            for b in range(batch):
                for k in range(last_event_count[b]):
                    last_events[b, last_event_list[b, k]] = 0.0
            _decay_all(pre_trace, event_trace, burst_trace, decay_pre, decay_avg)
            for b in range(batch):
                done[b, :] = t + 1
        # the spikes enter the traces (without learning: bring each spiking neuron's traces up to date first)
        for b in range(batch):
            for k in range(event_count[b]):
                i = event_list[b, k]
                _catch_up(b, i, t, done, pre_trace, event_trace, burst_trace, decay_pre, decay_avg)
                pre_trace[b, i] += f32(1.0)
                event_trace[b, i] += f32(1.0)
                counts[b, i] += f32(1.0)
            for k in range(burst_count[b]):
                i = burst_list[b, k]
                _catch_up(b, i, t, done, pre_trace, event_trace, burst_trace, decay_pre, decay_avg)
                burst_trace[b, i] += f32(decay_avg) ** f32(since_event[b, i])
    for b in range(batch):
        for i in range(size):
            _catch_up(b, i, n_steps - 1, done, pre_trace, event_trace, burst_trace, decay_pre, decay_avg)


@njit(cache=True)
def _feedback_jump(b, n, events, bursts, event_list, event_count, burst_list, burst_count, feedback, p_reference,
                   dend_jump):
    """dend_jump += (bursts - p_reference events) of the output, times the feedback weights."""
    f32 = np.float32
    for k in range(burst_count[b]):
        j = burst_list[b, k]
        if j >= 4 * n:
            x = bursts[b, j] - f32(p_reference) * events[b, j]
            for i in range(2 * n):
                dend_jump[i] = x * feedback[j - 4 * n, i] + dend_jump[i]
    for k in range(event_count[b]):
        j = event_list[b, k]
        if j >= 4 * n and bursts[b, j] == 0 and p_reference != 0:
            x = bursts[b, j] - f32(p_reference) * events[b, j]
            for i in range(2 * n):
                dend_jump[i] = x * feedback[j - 4 * n, i] + dend_jump[i]


@njit(cache=True)
def _catch_up(b, i, t, done, pre_trace, event_trace, burst_trace, decay_pre, decay_avg):
    """Decay neuron (b, i)'s traces through step t (inclusive), if they are behind."""
    k = t + 1 - done[b, i]
    if k > 0:
        pre_trace[b, i] *= np.float32(decay_pre ** k)
        d = np.float32(decay_avg ** k)
        event_trace[b, i] *= d
        burst_trace[b, i] *= d
        done[b, i] = t + 1


@njit(cache=True, fastmath={"contract"})
def _decay_all(pre_trace, event_trace, burst_trace, decay_pre, decay_avg):
    """One step of decay of every trace."""
    dp, da = np.float32(decay_pre), np.float32(decay_avg)
    for b in range(pre_trace.shape[0]):
        for i in range(pre_trace.shape[1]):
            pre_trace[b, i] *= dp
            event_trace[b, i] *= da
            burst_trace[b, i] *= da


@njit(cache=True)
def _neurons(t, b, n, draw, uniforms, waits, log_miss, v_soma, v_dend, since_event, countdown, events, bursts,
             event_list, event_count, burst_list, burst_count, soma_drive_scaled, dend_drive_scaled, soma_jump,
             dend_jump, decay_soma, decay_dend, max_event_probability, refractory_steps, delay_low, delay_count):
    """One step of row b's neurons, as ``BurstingPopulation.step``; appends the spikes to the lists."""
    f32 = np.float32
    size = v_soma.shape[1]
    ds, dd = f32(decay_soma), f32(decay_dend)
    for i in range(size):
        v_soma[b, i] = (v_soma[b, i] * ds + soma_drive_scaled[b, i]) + soma_jump[i]
    for i in range(size):
        v_dend[b, i] = v_dend[b, i] * dd + dend_drive_scaled[b, i]
    for i in range(2 * n):
        v_dend[b, 2 * n + i] = v_dend[b, 2 * n + i] + dend_jump[i]
    q_max = f32(max_event_probability)
    for i in range(size):
        since_event[b, i] += 1
        if countdown[b, i] > 0:
            countdown[b, i] -= 1
            if countdown[b, i] == 0:
                bursts[b, i] = 1.0
                burst_list[b, burst_count[b]] = i
                burst_count[b] += 1
        if draw:
            waits[b, i] -= 1
            if waits[b, i] > 0:
                continue
            waits[b, i] = geometric_wait(log_miss)
            u = f32(np.random.random()) * q_max
        else:
            u = uniforms[t, b, i]
            if u >= q_max:  # no event possible: skip the exponentials
                continue
        if since_event[b, i] < refractory_steps:
            continue
        q = q_max * (f32(1.0) / (f32(1.0) + np.exp(-v_soma[b, i])))
        if u < q:
            threshold = q * (f32(1.0) / (f32(1.0) + np.exp(-v_dend[b, i])))
            if u < threshold:
                countdown[b, i] = delay_low + min(int(u / threshold * f32(delay_count)), delay_count - 1)
            since_event[b, i] = 0
            events[b, i] = 1.0
            event_list[b, event_count[b]] = i
            event_count[b] += 1


@njit(cache=True, fastmath={"contract"})
def _learn(n, rows_per_copy, events, bursts, last_events, last_event_list, last_event_count, w1, w2, pre_trace,
           event_trace, burst_trace, signal, too_low, soma_drive_scaled, decay_avg, rate_scale, eta_hidden,
           eta_output, homeostasis, rate_low, rate_high, bias_hidden, bias_output):
    """Burst-dependent plasticity and homeostasis of W1 and W2 (and the biases), as ``SpikingXOR.learn``."""
    f32 = np.float32
    batch, size = events.shape
    for b in range(batch):
        for i in range(2 * n, size):
            e, s = events[b, i], bursts[b, i]
            value = f32(0.0)
            low = f32(0.0)
            rate = event_trace[b, i] * f32(1 - decay_avg) * f32(rate_scale)
            if e != 0 or s != 0:
                p_bar = burst_trace[b, i] / max(event_trace[b, i], f32(1e-6))
                value = s - p_bar * e
                if homeostasis > 0:
                    high = f32(homeostasis) * max(rate - f32(rate_high), f32(0.0)) / max(rate, f32(1e-3))
                    value = value - high * (e + s)
            if homeostasis > 0:
                low = f32(homeostasis) * max(f32(rate_low) - rate, f32(0.0))
            signal[b, i] = value
            too_low[b, i] = low
    for c in range(w1.shape[0]):
        first, last = c * rows_per_copy, (c + 1) * rows_per_copy
        for layer in range(2):
            if layer == 0:
                weights, post0, pre0, n_post, n_pre, eta, bias = w1[c], 2 * n, 0, 2 * n, 2 * n, eta_hidden, bias_hidden
            else:
                weights, post0, pre0, n_post, n_pre, eta, bias = w2[c], 4 * n, 2 * n, n, 2 * n, eta_output, bias_output
            if eta == 0:
                continue
            # dW[:, i] = eta sum_b pre_trace[b, :] signal[b, i], for the neurons i that fired
            for i in range(n_post):
                any_signal = False
                for b in range(first, last):
                    if signal[b, post0 + i] != 0:
                        any_signal = True
                if not any_signal:
                    continue
                total = f32(0.0)
                for b in range(first, last):
                    s = signal[b, post0 + i]
                    total += s
                    if s != 0:
                        for j in range(n_pre):
                            weights[j, i] += f32(eta) * (pre_trace[b, pre0 + j] * s)
                if bias != 0:  # the copy's bias of neuron i, shared by its rows
                    for b in range(first, last):
                        soma_drive_scaled[b, post0 + i] += f32(bias) * total
            if homeostasis > 0:  # growth at presynaptic events, towards neurons below their lower bound
                for b in range(first, last):
                    for k in range(last_event_count[b]):
                        j = last_event_list[b, k] - pre0
                        if 0 <= j < n_pre:
                            for i in range(n_post):
                                low = too_low[b, post0 + i]
                                if low != 0:
                                    weights[j, i] += f32(eta) * low
