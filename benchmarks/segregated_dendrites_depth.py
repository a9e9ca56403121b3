"""Does the hidden layer help the spiking segregated-dendrites network, trained longer?

Guerguiev, Lillicrap & Richards 2017 (Figure 6): after 60 epochs of online spiking training on
MNIST, 784-10 reaches 8.3 % test error, 784-500-10 4.1 % and 784-500-100-10 3.2 %. Chapter 5 can
afford one online epoch, after which 784-10 is ahead. This script trains the networks the paper's
way (spiking, online, the paper's learning rates for each depth, g_a = 0, compiled phases) for
``--epochs`` epochs of the 4,000 training images of "mnist-5k", several seeds each, plus the
readout-only control (784-500-10 with its hidden layer frozen), and records the test error on its
1,000 test images after every epoch (the rate mode's steady state with the trained weights, as in
the chapter). Nothing is tuned: every setting is the paper's or the chapter's.

The per-epoch errors go to ``benchmarks/results/segregated_dendrites_depth.json`` after every run
(a stopped run keeps the runs it finished, and the same command skips them when it starts again),
and the table to ``segregated_dendrites_depth.md``. Run:

    python benchmarks/segregated_dendrites_depth.py --epochs 20 --seeds 0 1 2 3 4
    python benchmarks/segregated_dendrites_depth.py --table     # only rewrite the markdown
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from dendnotes.data import load
from dendnotes.files import write_json_atomically
from dendnotes.segregated_dendrites import PaperEvaluation, SegregatedDendrites, SegregatedNetwork
from dendnotes.training import fit

RESULTS = Path(__file__).parent / "results"
# name: (layer sizes, learning rates: None for the paper's of that depth)
NETWORKS = {
    "784-10": ([784, 10], None),
    "784-500-10": ([784, 500, 10], None),
    "784-500-10, readout only": ([784, 500, 10], (0.0, 0.21)),
    "784-500-100-10": ([784, 500, 100, 10], None),
}
PAPER = {"784-10": 8.3, "784-500-10": 4.1, "784-500-100-10": 3.2}  # MNIST, 60 epochs of 60,000 images (Fig. 6)


def train(name: str, seed: int, epochs: int, data) -> dict:
    """One network trained the paper's way; its test error (%) and more after every epoch."""
    sizes, learning_rates = NETWORKS[name]
    rule = SegregatedDendrites(SegregatedNetwork(sizes, seed=seed), seed=seed, steady_test=True,
                               learning_rates=learning_rates)
    start = time.process_time()
    history = fit(rule, data, epochs=epochs, batch_size=1, lr=1, seed=seed, progress=False,
                  **PaperEvaluation(rule).hooks())
    return {"network": name, "seed": seed, "learning_rates": list(rule.learning_rates),
            "test_error": [round(100 * (1 - a), 2) for a in history["test_accuracy"]],
            # the forward phases seen while training, and the hidden updates' mean angle to backprop (epoch 1 on)
            "train_error": [round(100 * (1 - a), 2) for a in history["train_accuracy"]],
            "hidden_angle_0": [round(a, 2) for a in history.metrics.get("hidden_angle_0", [])],
            "cpu_s": round(time.process_time() - start, 1)}


def table(record: dict) -> str:
    """The markdown of a record: mean and range of the seeds at a few epochs, and every seed's last error."""
    settings, runs = record["settings"], record["runs"]
    epochs = settings["epochs"]
    shown = sorted({1, 2, 4, *range(5, epochs + 1, 5), epochs} & set(range(1, epochs + 1)))
    cpu = {}
    for run in runs:
        cpu.setdefault(run["network"], []).append(run["cpu_s"] / epochs)
    lines = [
        "# Segregated dendrites: does the hidden layer help the spiking network trained longer?",
        "",
        f"Produced by `python benchmarks/segregated_dendrites_depth.py --epochs {epochs} --seeds "
        f"{' '.join(map(str, settings['seeds']))}` ({record['date']}; {record['machine']}, shared with other jobs: load "
        f"average {record['load_average']}; the run at nice 10). Per-epoch numbers of every run: "
        "`segregated_dendrites_depth.json` beside this file.",
        "",
        f"Spiking, online (one image, two phases, one update), the paper's learning rates for each depth "
        f"(784-10: 0.19; 784-500-10: 0.21, 0.21; 784-500-100-10: 0.23, 0.23, 0.12), g_a = 0; the readout-only "
        f"control is 784-500-10 with learning rates (0, 0.21). {epochs} epochs of the 4,000 training images of "
        "mnist-5k; test error (%) on its 1,000 test images after every epoch (the rate mode's steady state with "
        "the trained weights). Cells: mean of the seeds (min to max).",
        "",
        "| network | seeds | CPU s per epoch | " + " | ".join(f"epoch {e}" for e in shown) + " |",
        "|---|---|---:|" + "---:|" * len(shown),
    ]
    by_network = {}
    for run in runs:
        by_network.setdefault(run["network"], []).append(run)
    for name, group in by_network.items():
        errors = np.array([run["test_error"] for run in group])
        cells = [f"{errors[:, e].mean():.1f} ({errors[:, e].min():.1f}-{errors[:, e].max():.1f})" for e in shown]
        seeds = ", ".join(str(run["seed"]) for run in group)
        lines.append(f"| {name} | {seeds} | {np.mean(cpu[name]):.1f} | " + " | ".join(cells) + " |")
    lines += ["", f"Test error after epoch {epochs}, every seed:", ""]
    for name, group in by_network.items():
        lines.append(f"- {name}: " + ", ".join(f"seed {run['seed']} {run['test_error'][-1]:.1f} %" for run in group))
    lines += ["", "The paper's numbers (MNIST, 60 epochs of 60,000 images): "
              + ", ".join(f"{name} {error} %" for name, error in PAPER.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--out", type=Path, default=RESULTS / "segregated_dendrites_depth.json")
    parser.add_argument("--table", action="store_true", help="only rewrite the markdown from the JSON")
    args = parser.parse_args()
    markdown = args.out.with_suffix(".md")
    if args.table:
        markdown.write_text(table(json.loads(args.out.read_text())))
        return
    settings = {"epochs": args.epochs, "seeds": args.seeds, "dataset": "mnist-5k", "mode": "spiking",
                "batch_size": 1, "lr": 1, "g_a": 0.0, "test": "steady state"}
    record = json.loads(args.out.read_text()) if args.out.exists() else None
    if record is None or record["settings"] != settings:
        record = {"settings": settings, "runs": []}
    done = {(run["network"], run["seed"]) for run in record["runs"]}
    data = load("mnist-5k")
    loads = [os.getloadavg()[0]]
    for name in args.networks:
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            run = train(name, seed, args.epochs, data)
            loads.append(os.getloadavg()[0])
            record["runs"].append(run)
            record |= {"date": str(datetime.date.today()), "machine": f"{os.cpu_count()} cores, {platform.machine()}",
                       "load_average": f"{min(loads):.1f} to {max(loads):.1f}"}
            write_json_atomically(args.out, record, overwrite=True)
            markdown.write_text(table(record))
            print(name, seed, run["test_error"][1::max(1, args.epochs // 10)], f"{run['cpu_s']:.0f} CPU s", flush=True)


if __name__ == "__main__":
    main()
