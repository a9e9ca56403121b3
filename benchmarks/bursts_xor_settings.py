"""Which changes to the authors' XOR settings let our paper-scale circuit learn XOR?

    python benchmarks/bursts_xor_settings.py [--neurons 100] [--presentations 250]

Trains the circuit of ``bursts.XORConfig()`` (the authors' settings where they exist) with one
or more settings changed, at ``--neurons`` per population (the paper: 500) and ``--presentations``
presentations of the four patterns (four examples of 8 s each), seed 0, with the fast engine;
then the chosen setting (``bursts.PAPER_SCALE_XOR``) on seeds 1 and 2 and its two controls.
Reports the output rates per pattern after training (8 s without plasticity) and the margin
(lowest XOR = 1 rate minus highest XOR = 0 rate). Writes ``benchmarks/results/bursts_xor_settings.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from dataclasses import replace
from pathlib import Path

from dendnotes import bursts

RESULTS = Path(__file__).resolve().parent / "results"

CHOSEN = {"homeostasis": 0.1, "output_bias": -3.0}
RUNS = [  # (description, changes from XORConfig(), seed)
    ("the authors' settings", {}, 0),
    ("pbar over 500 ms (FAST_XOR)", {"tau_avg": 500.0}, 0),
    ("input -> hidden 4x hidden -> output (FAST_XOR)", {"hidden_learning": 4.0}, 0),
    ("homeostasis 0.1 (FAST_XOR)", {"homeostasis": 0.1}, 0),
    ("the three above together", {"tau_avg": 500.0, "hidden_learning": 4.0, "homeostasis": 0.1}, 0),
    ("bias plasticity 5 (FAST_XOR)", {"bias_eta": 5.0}, 0),
    ("homeostasis 0.1, bias plasticity 5", {"homeostasis": 0.1, "bias_eta": 5.0}, 0),
    ("output bias -3 (output starts at 4 Hz)", {"output_bias": -3.0}, 0),
    ("**homeostasis 0.1, output bias -3 (chosen)**", CHOSEN, 0),
    ("**chosen**", CHOSEN, 1),
    ("**chosen**", CHOSEN, 2),
    ("chosen, burst feedback cut", {**CHOSEN, "feedback": 0.0}, 0),
    ("chosen, hidden plasticity off", {**CHOSEN, "hidden_learning": 0.0}, 0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--presentations", type=int, default=250)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = [
        "# Spiking XOR at paper scale: which settings learn",
        "",
        f"Produced by `python benchmarks/bursts_xor_settings.py --neurons {args.neurons} --presentations "
        f"{args.presentations}` on {datetime.date.today()}: `XORConfig()` (the authors' settings where they exist) "
        f"with the changes listed, {args.neurons} neurons per population, {4 * args.presentations} examples of 8 s "
        "at 1 ms, fast engine. Output rates (Hz) after training, over 8 s without plasticity; margin = lowest "
        "XOR = 1 rate minus highest XOR = 0 rate.",
        "",
        "| run | changes | seed | 00 | 01 | 10 | 11 | margin |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    start = time.process_time()
    for description, changes, seed in RUNS:
        config = replace(bursts.XORConfig(), n_per_population=args.neurons, **changes)
        net = bursts.SpikingXOR(config, seed=seed, engine="fast")
        for _ in range(args.presentations):
            net.example()
        rates = net.test().tolist()
        margin = min(rates[1], rates[2]) - max(rates[0], rates[3])
        changed = ", ".join(f"{k} {v:g}" for k, v in changes.items()) or "none"
        lines.append(f"| {description} | {changed} | {seed} | " + " | ".join(f"{r:.2f}" for r in rates)
                     + f" | {margin:+.2f} |")
        print(lines[-1], flush=True)
    lines += ["", f"CPU time {time.process_time() - start:.0f} s (2 shared cores; load average {load:.1f} at the "
              f"start, {os.getloadavg()[0]:.1f} at the end)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bursts_xor_settings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
