"""Does the hidden layer help the spiking segregated-dendrites network within a few epochs?

Guerguiev, Lillicrap & Richards 2017 (Figure 6): after 60 epochs of online spiking training on
MNIST, 784-500-10 reaches 4.1 % test error and 784-10 8.3 %. Chapter 5 can afford one online
epoch of 2,000 images per network, after which 784-10 is ahead. This script trains both the
paper's way (spiking, online, the paper's learning rates, compiled phases) for ``--epochs``
epochs of the 4,000 training images of "mnist-5k", three seeds each, and records the test error
on its 1,000 test images after every epoch (the rate mode's steady state with the trained
weights, as in the chapter). Run:

    python benchmarks/segregated_dendrites_depth.py     # writes benchmarks/results/...
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

import numpy as np

from dendnotes.data import load
from dendnotes.segregated_dendrites import PaperEvaluation, SegregatedDendrites, SegregatedNetwork
from dendnotes.training import fit

RESULTS = Path(__file__).parent / "results" / "segregated_dendrites_depth.md"
NETWORKS = {"784-10": [784, 10], "784-500-10": [784, 500, 10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    x_train, y_train, x_test, y_test = load("mnist-5k")
    errors, cpu = {}, {}
    for name, sizes in NETWORKS.items():
        for seed in range(args.seeds):
            rule = SegregatedDendrites(SegregatedNetwork(sizes, seed=seed), seed=seed, steady_test=True)
            start = time.process_time()
            history = fit(rule, (x_train, y_train, x_test, y_test), epochs=args.epochs, batch_size=1, lr=1, seed=seed,
                          progress=False, **PaperEvaluation(rule).hooks())
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - start
            errors.setdefault(name, []).append([100 * (1 - a) for a in history["test_accuracy"]])
            print(name, seed, np.round(errors[name][-1], 1), flush=True)
    lines = [
        "# Segregated dendrites: does the hidden layer help within a few spiking epochs?",
        "",
        f"Produced by `python benchmarks/segregated_dendrites_depth.py` on {datetime.date.today()} "
        f"(load average at the start {load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f}; CPU time per "
        f"network, all seeds: " + ", ".join(f"{n} {t:.0f} s" for n, t in cpu.items()) + ").",
        f"Spiking, online (one image, two phases, one update), the paper's learning rates, g_a = 0; "
        f"{args.epochs} epochs of the 4,000 training images of mnist-5k, seeds 0-{args.seeds - 1}; test error (%) "
        "on its 1,000 test images after every epoch (rate mode's steady state with the trained weights).",
        "",
        "| network | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1)) + " |",
        "|---|" + "---:|" * args.epochs,
    ]
    for name, runs in errors.items():
        runs = np.array(runs)
        cells = [f"{runs[:, e].mean():.1f} ({', '.join(f'{v:.1f}' for v in runs[:, e])})"
                 for e in range(1, args.epochs + 1)]
        lines.append(f"| {name}, mean (seeds) | " + " | ".join(cells) + " |")
    lines += ["", "The paper's comparison (8.3 % against 4.1 %) is after 60 epochs of 60,000 images."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
