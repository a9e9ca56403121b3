"""Does the spiking XOR circuit behave the same at a 1 ms step as at the authors' 0.1 ms?

    python benchmarks/bursts_xor_timestep.py [--neurons 100] [--seeds 3]

Runs the circuit of ``bursts.XORConfig`` (``--neurons`` per population) for one example of
each pattern at both steps and several seeds: 2 s of prediction, then 0.8 s with the teacher
and plasticity on. Compares the population event rates and burst probabilities per pattern,
and the learned change of the input -> hidden and hidden -> output weights, between the two
steps, against their spread over seeds. Writes ``benchmarks/results/bursts_xor_timestep.md``.
"""

from __future__ import annotations

import argparse
import datetime
import time
from dataclasses import replace
from pathlib import Path

import torch

from dendnotes import bursts

RESULTS = Path(__file__).resolve().parent / "results"
POPULATIONS = ["input 1", "input 2", "hidden 1", "hidden 2", "output"]


def one_example(dt: float, neurons: int, seed: int) -> dict[str, torch.Tensor]:
    """Rates and burst probabilities per pattern and population, and the mean weight changes."""
    config = replace(bursts.XORConfig(), n_per_population=neurons, params=bursts.BurstNeuronParams(dt=dt))
    net = bursts.SpikingXOR(config, seed=seed)
    net.run(500.0)  # settle
    w1, w2 = net.w1.clone(), net.w2.clone()
    rates, events, spikes_b = net.run(2000.0, record=True)
    _, p = net.population_averages(events, spikes_b)
    net.run(800.0, teacher=net.teacher_drive(rates[:, 4]))
    return {"rate": rates, "burst_probability": p,
            "dw_in_hidden": (net.w1 - w1).mean() / net.unit, "dw_hidden_out": (net.w2 - w2).mean() / net.unit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    found, seconds = {}, {}
    for dt in (1.0, 0.1):
        start = time.perf_counter()
        runs = [one_example(dt, args.neurons, seed) for seed in range(args.seeds)]
        seconds[dt] = time.perf_counter() - start
        found[dt] = {key: torch.stack([r[key] for r in runs]) for key in runs[0]}
        print(f"dt = {dt} ms: {seconds[dt]:.0f} s", flush=True)
    lines = [
        "# Spiking XOR: 1 ms against 0.1 ms steps",
        "",
        f"Produced by `python benchmarks/bursts_xor_timestep.py --neurons {args.neurons} --seeds {args.seeds}` "
        f"on {datetime.date.today()}: `XORConfig()` with {args.neurons} neurons per population, seeds "
        f"0-{args.seeds - 1}, 0.5 s settling, 2 s of prediction, then 0.8 s with the teacher and plasticity.",
        "Mean over seeds, with the standard deviation over seeds in brackets.",
        "",
        "| quantity | pattern | 1 ms | 0.1 ms |",
        "|---|---|---|---|",
    ]

    def cell(x, digits=2):
        return f"{x.mean():.{digits}f} ({x.std():.{digits}f})"

    for key, unit in (("rate", "event rate (Hz)"), ("burst_probability", "burst probability")):
        for k, population in enumerate(POPULATIONS):
            for pattern in range(4):
                a, b = found[1.0][key][:, pattern, k], found[0.1][key][:, pattern, k]
                lines.append(f"| {population}, {unit} | {pattern:02b} | {cell(a)} | {cell(b)} |")
    for key in ("dw_in_hidden", "dw_hidden_out"):
        lines.append(f"| mean weight change (drive per Hz), {key[3:].replace('_', ' -> ')} | all | "
                     f"{cell(found[1.0][key], 5)} | {cell(found[0.1][key], 5)} |")
    lines += ["", f"Wall time on a shared 2-core CPU: {seconds[1.0]:.0f} s at 1 ms, {seconds[0.1]:.0f} s at 0.1 ms."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bursts_xor_timestep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
