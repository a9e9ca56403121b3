"""Speed of the paper-scale spiking XOR: the compiled step loop against the reference step.

    python benchmarks/bursts_xor_speed.py [--predict-ms 1000] [--learn-ms 300] [--repeats 2]

Builds the paper-scale circuit (500 neurons per population, 1 ms step) and times the
prediction part (no plasticity) and the teaching part (plasticity on) of an example with
``SpikingXOR``'s three engines, in the same process: the reference (torch, one step at a
time, synapses read and changed only where neurons fired), the compiled loop
(:mod:`dendnotes.bursts_kernel`) fed the reference's uniforms (same spikes), and the fast
engine, the same loop drawing its own random numbers only at candidate steps (same
statistics; what ``run_xor_experiment`` uses on a CPU). Extrapolates to the authors' schedule (2,000 examples of 8 s, the last 10%
teaching; the four patterns run side by side, so 500 presentations), and times the
compilation of the kernel in an empty cache (what a fresh CI pays once). Writes
``benchmarks/results/bursts_xor_speed.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dendnotes import bursts

RESULTS = Path(__file__).resolve().parent / "results"


def ms_per_step(engine: str, predict_ms: float, learn_ms: float, repeats: int) -> dict[str, tuple[float, float]]:
    """Best-of-``repeats`` wall and CPU time per step (ms), without and with plasticity."""
    net = bursts.SpikingXOR(bursts.XORConfig(), seed=0, engine=engine)
    net.run(50.0, teacher=net.teacher_drive(torch.full((4,), 6.0)))  # warm up (and compile)
    best = {"wall": [float("inf")] * 2, "cpu": [float("inf")] * 2}
    for _ in range(repeats):
        for k, (duration, teacher) in enumerate(((predict_ms, None), (learn_ms, torch.full((4,), 6.0)))):
            wall, cpu = time.perf_counter(), time.process_time()
            net.run(duration, teacher=None if teacher is None else net.teacher_drive(teacher))
            best["wall"][k] = min(best["wall"][k], (time.perf_counter() - wall) / duration * 1e3)
            best["cpu"][k] = min(best["cpu"][k], (time.process_time() - cpu) / duration * 1e3)
    return {clock: tuple(values) for clock, values in best.items()}


def compile_seconds() -> float:
    """Wall time of a fresh process that compiles the kernel into an empty cache and runs one step,
    minus that of the same process once the cache is warm."""
    code = ("from dendnotes.bursts import SpikingXOR, XORConfig; import torch; "
            "[SpikingXOR(XORConfig(n_per_population=10), engine=e).run(10.0, teacher=torch.zeros(4)) "
            "for e in ('compiled', 'fast')]")
    times = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "NUMBA_CACHE_DIR": cache})
            times.append(time.perf_counter() - start)
    return times[0] - times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predict-ms", type=float, default=1000.0)
    parser.add_argument("--learn-ms", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    compiling = compile_seconds()
    rows = {engine: ms_per_step(engine, args.predict_ms, args.learn_ms, args.repeats)
            for engine in bursts.ENGINES}
    config = bursts.XORConfig()
    steps = 2000 / 4 * config.example_duration  # at 1 ms
    learning = config.learning_fraction
    lines = [
        "# Spiking XOR at paper scale: time per step",
        "",
        f"Produced by `python benchmarks/bursts_xor_speed.py` on {datetime.date.today()}.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s); load average at the start of the run {load:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f} "
        "(other jobs shared the CPU: compare the rows, which were measured in the same run, not the absolute times).",
        "Circuit: 5 populations x 500 neurons, the four XOR patterns side by side (batch 4), dt = 1 ms; "
        f"best of {args.repeats}. The reference and compiled engines draw the same uniforms and give the same "
        "spikes; the fast engine draws its own random numbers (same statistics, see tests/test_bursts.py). "
        "CPU time (of this process) approximates what an idle core would take.",
        "",
        "| engine | clock | ms / step, prediction | ms / step, teaching | paper schedule per seed (h) | speed-up |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for clock in ("wall", "cpu"):
        reference = None
        for name, times in rows.items():
            predict, learn = times[clock]
            hours = steps * ((1 - learning) * predict + learning * learn) / 3.6e6
            reference = reference or hours
            lines.append(f"| {name} | {clock} | {predict:.3f} | {learn:.3f} | {hours:.2f} | {reference / hours:.1f}x |")
    lines += ["", f"The paper schedule is {steps / 1e6:.0f} million steps of 1 ms (2,000 examples of 8 s, four "
              f"patterns at a time, the last {learning:.0%} of each with plasticity on).",
              f"Compiling the kernel into an empty cache took {compiling:.0f} s (once per machine; numba caches it)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bursts_xor_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
