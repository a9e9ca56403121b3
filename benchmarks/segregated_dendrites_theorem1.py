"""Is Theorem 1's condition met while the spiking segregated-dendrites network learns online?

Guerguiev, Lillicrap & Richards 2017, Theorem 1 (Methods): in a network with one hidden layer, the
hidden target moves the output closer to its target if the output error is small enough and mu, the
largest eigenvalue of (I - J_beta J_gamma)^T (I - J_beta J_gamma), is below 1. Figure 5-figure
supplement 1A plots mu "over 60,000 training examples" (the first epoch of MNIST) for the Jacobians
averaged over the last 100 training examples, and says it "drops below one as learning progresses".

This script trains 784-500-10 the paper's way (spiking, online: one image, two phases, one update;
the paper's learning rates; compiled phases) on the 4,000 training images of "mnist-5k", seeds 0-4,
for ``--epochs`` epochs (15 epochs = 60,000 updates, as many as the paper's first MNIST epoch), with
g_a = 0 (the paper's network) and g_a = 0.6, and records mu for every training example
(:class:`dendnotes.segregated_dendrites.Theorem1Record`): from each example's own Jacobians, and from
the Jacobians averaged over the last 100 examples (mean J_beta times mean J_gamma, the paper's caption;
the authors' code averages the products instead: both are recorded). Run:

    python benchmarks/segregated_dendrites_theorem1.py     # writes benchmarks/results/...
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import numpy as np

from dendnotes.compartments import DendriteParams
from dendnotes.data import load
from dendnotes.segregated_dendrites import SegregatedDendrites, SegregatedNetwork, Theorem1Record
from dendnotes.training import fit

RESULTS = Path(__file__).parent / "results" / "segregated_dendrites_theorem1"
MEASURES = {"per_example": "each example's own Jacobians",
            "product_of_means": "mean J_beta x mean J_gamma over the last 100 examples (the paper's caption)",
            "mean_of_products": "mean of J_beta J_gamma over the last 100 examples (the authors' code)"}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
CURVE_STEP = 100  # the JSON keeps every 100th value of the windowed mu


def train(x_train, y_train, x_test, y_test, *, g_a: float, seed: int, epochs: int, record: bool):
    """One online spiking run; returns (test error % after every epoch, the Theorem1Record or None, CPU s)."""
    net = SegregatedNetwork([784, 500, 10], params=DendriteParams(g_a=g_a), seed=seed)
    rule = SegregatedDendrites(net, seed=seed, steady_test=True)
    recorder = Theorem1Record(rule) if record else None
    start = time.process_time()
    history = fit(rule, (x_train, y_train, x_test, y_test), epochs=epochs, batch_size=1, lr=1, seed=seed,
                  progress=False, evaluate_train=False, on_batch_end=recorder.on_batch_end if record else None)
    return [100 * (1 - a) for a in history["test_accuracy"]], recorder, time.process_time() - start


def summary(values: np.ndarray) -> dict:
    """Fraction below 1 and quantiles of mu over a stretch of training (values: seeds x examples)."""
    return {"fraction_below_1": [float(f) for f in (values < 1).mean(axis=1)],
            "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))}}


def fmt(values) -> str:
    values = np.asarray(values)
    return f"{values.mean():.3f} ({values.min():.3f}-{values.max():.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--couplings", type=float, nargs="+", default=[0.0, 0.6])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    x_train, y_train, x_test, y_test = load("mnist-5k")
    n = len(x_train)
    train(x_train[:100], y_train[:100], x_test, y_test, g_a=0.0, seed=0, epochs=1, record=True)  # compile first
    cost = {record: train(x_train, y_train, x_test, y_test, g_a=0.0, seed=0, epochs=1, record=record)[2]
            for record in (False, True)}
    runs = {}
    for g_a in args.couplings:
        for seed in range(args.seeds):
            errors, recorder, cpu = train(x_train, y_train, x_test, y_test, g_a=g_a, seed=seed, epochs=args.epochs,
                                          record=True)
            runs.setdefault(g_a, []).append((errors, recorder, cpu))
            print(f"g_a = {g_a}, seed {seed}: test error {errors[1]:.1f} % after 1 epoch, {errors[-1]:.1f} % after "
                  f"{args.epochs}; windowed mu at the end of epoch 1 {recorder.product_of_means[n - 1]:.3f}, "
                  f"of epoch {args.epochs} {recorder.product_of_means[-1]:.3f} ({cpu:.0f} s CPU)", flush=True)
    record = {"settings": {"dataset": "mnist-5k", "sizes": [784, 500, 10], "mode": "spiking", "batch_size": 1,
                           "lr": 1, "steady_test": True, "epochs": args.epochs, "seeds": list(range(args.seeds)),
                           "window": 100, "examples_per_epoch": n, "curve_step": CURVE_STEP},
              "measures": MEASURES, "runs": {}}
    lines = [
        "# Segregated dendrites: Theorem 1's condition during online spiking training",
        "",
        f"Produced by `python benchmarks/segregated_dendrites_theorem1.py` on {datetime.date.today()} (shared "
        f"2-core machine, load average at the start {load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f}).",
        f"784-500-10, spiking, online (`batch_size=1, lr=1`, the paper's learning rates), the {n:,} training images "
        f"of mnist-5k, seeds 0-{args.seeds - 1}, {args.epochs} epochs ({args.epochs * n:,} updates). mu is the largest "
        "eigenvalue of (I - J_beta J_gamma)^T (I - J_beta J_gamma) (Theorem 1 asks for mu < 1), recorded at every "
        "training example's forward phase, from:",
        "",
        *[f"- `{key}`: {text}" for key, text in MEASURES.items()],
        "",
        "Values are the mean over the seeds (range over the seeds). The paper (Figure 5-figure supplement 1A) "
        "plots the windowed mu over the 60,000 examples of its first MNIST epoch.",
    ]
    for g_a, results in runs.items():
        values = {key: np.array([getattr(r, key) for _, r, _ in results]) for key in MEASURES}
        errors = np.array([e for e, _, _ in results])
        record["runs"][str(g_a)] = {
            "test_error_percent": errors.tolist(),
            "first_epoch": {key: summary(v[:, :n]) for key, v in values.items()},
            "per_epoch": {key: [summary(v[:, e * n:(e + 1) * n]) for e in range(args.epochs)] for key, v in values.items()},
            "curves": {"product_of_means": values["product_of_means"][:, CURVE_STEP - 1::CURVE_STEP].round(4).tolist()},
        }
        lines += ["", f"## g_a = {g_a}: the first epoch ({n:,} examples)", "",
                  "| mu from | fraction of examples with mu < 1 | " + " | ".join(f"{q:.0%} quantile" for q in QUANTILES)
                  + " | at example 100 | at the end of the epoch |",
                  "|---|---:|" + "---:|" * (len(QUANTILES) + 2)]
        for key, v in values.items():
            quantiles = np.quantile(v[:, :n], QUANTILES, axis=1)
            lines.append(f"| `{key}` | {fmt((v[:, :n] < 1).mean(axis=1))} | " + " | ".join(fmt(q) for q in quantiles)
                         + f" | {fmt(v[:, 99])} | {fmt(v[:, n - 1])} |")
        lines += ["", "Quantiles are over the epoch's examples, per seed. Over all epochs, windowed mu "
                  "(`product_of_means`) and the test error after each epoch:", "",
                  "| epoch | updates | fraction with windowed mu < 1 | median windowed mu | "
                  "fraction with per-example mu < 1 | test error (%) |", "|---:|---:|---:|---:|---:|---:|"]
        for e in range(args.epochs):
            stretch = slice(e * n, (e + 1) * n)
            lines.append(f"| {e + 1} | {(e + 1) * n:,} | {fmt((values['product_of_means'][:, stretch] < 1).mean(1))} | "
                         f"{fmt(np.median(values['product_of_means'][:, stretch], axis=1))} | "
                         f"{fmt((values['per_example'][:, stretch] < 1).mean(1))} | "
                         f"{errors[:, e + 1].mean():.1f} ({errors[:, e + 1].min():.1f}-{errors[:, e + 1].max():.1f}) |")
        below = [np.flatnonzero(np.asarray(r.product_of_means) < 1) for _, r, _ in results]
        lines += ["", "First update with windowed mu < 1, per seed: "
                  + ", ".join(f"{b[0] + 1:,}" if len(b) else "never" for b in below) + "."]
    cpu = np.array([[c for _, _, c in results] for results in runs.values()])
    lines += ["", "## Cost", "",
              f"One epoch, g_a = 0, seed 0, CPU time of the process: {cost[False]:.1f} s without recording, "
              f"{cost[True]:.1f} s with `Theorem1Record` ({cost[True] / cost[False]:.2f}x); it costs nothing unless "
              f"passed to `fit`. All {cpu.size} runs of {args.epochs} epochs: {cpu.sum() / 60:.0f} min CPU."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
