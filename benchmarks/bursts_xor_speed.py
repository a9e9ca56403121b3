"""Speed of the paper-scale spiking XOR step: sparse (event-driven) against dense synapses.

    python benchmarks/bursts_xor_speed.py [--predict-ms 300] [--learn-ms 100] [--repeats 2]

Builds the paper-scale circuit (500 neurons per population, 1 ms step) and times the
prediction part (no plasticity) and the teaching part (plasticity on) of an example,
once with the package's sparse step (only the synapses of neurons that fired are read
or changed) and once with dense matrix products in their place, in the same process.
Extrapolates to the authors' schedule (2,000 examples of 8 s, the last 10% teaching;
the four patterns run side by side, so 500 presentations). Writes
``benchmarks/results/bursts_xor_speed.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from dendnotes import bursts

RESULTS = Path(__file__).resolve().parent / "results"


def dense_spike_input(spikes, weights):
    return spikes @ weights


def dense_add_outer(weights, pre, post, scale, sparse):
    weights += scale * pre.T @ post


@contextmanager
def dense_synapses():
    """Swap the sparse synapse helpers for dense matrix products."""
    saved = bursts.spike_input, bursts.add_outer
    bursts.spike_input, bursts.add_outer = dense_spike_input, dense_add_outer
    try:
        yield
    finally:
        bursts.spike_input, bursts.add_outer = saved


def ms_per_step(predict_ms: float, learn_ms: float, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` wall time per step (ms) without and with plasticity."""
    config = replace(bursts.XORConfig(), params=bursts.BurstNeuronParams(dt=1.0))
    net = bursts.SpikingXOR(config, seed=0)
    net.run(50.0)  # warm up
    best_predict = best_learn = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net.run(predict_ms)
        best_predict = min(best_predict, (time.perf_counter() - start) / predict_ms * 1e3)
        start = time.perf_counter()
        net.run(learn_ms, teacher=net.teacher_drive(torch.full((4,), 6.0)))
        best_learn = min(best_learn, (time.perf_counter() - start) / learn_ms * 1e3)
    return best_predict, best_learn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predict-ms", type=float, default=300.0)
    parser.add_argument("--learn-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = {}
    with dense_synapses():
        rows["dense (reference)"] = ms_per_step(args.predict_ms, args.learn_ms, args.repeats)
    rows["sparse (package)"] = ms_per_step(args.predict_ms, args.learn_ms, args.repeats)
    config = bursts.XORConfig()
    steps = 2000 / 4 * config.example_duration  # at 1 ms
    learning = config.learning_fraction
    lines = [
        "# Spiking XOR at paper scale: time per step",
        "",
        f"Produced by `python benchmarks/bursts_xor_speed.py` on {datetime.date.today()}.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s); load average at the end of the run {os.getloadavg()[0]:.1f} "
        "(other jobs shared the CPU: compare the rows, which were measured in the same run, not the absolute times).",
        "Circuit: 5 populations x 500 neurons, the four XOR patterns side by side (batch 4), dt = 1 ms; "
        f"best of {args.repeats}.",
        "",
        "| synapses | ms / step, prediction | ms / step, teaching | paper schedule (h) | speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    reference = None
    for name, (predict, learn) in rows.items():
        hours = steps * ((1 - learning) * predict + learning * learn) / 3.6e6
        reference = reference or hours
        lines.append(f"| {name} | {predict:.2f} | {learn:.2f} | {hours:.1f} | {reference / hours:.1f}x |")
    lines += ["", f"The paper schedule is {steps / 1e6:.0f} million steps of 1 ms (2,000 examples of 8 s, four "
              f"patterns at a time, the last {learning:.0%} of each with plasticity on)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bursts_xor_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
