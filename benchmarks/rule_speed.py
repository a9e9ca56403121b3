"""Training time per epoch of every rule in the shared benchmark, as a ratio to backprop's.

    python benchmarks/rule_speed.py [--dataset mnist-5k] [--epochs 2] [--device cpu]

Runs every ``compare-*`` experiment of ``python -m dendnotes.reproduce`` in this one
process, on the same machine and data (the shared benchmark's rules on its 784-256-256-10
layer sizes at one fixed learning rate, without the learning-rate search; the
segregated-dendrites and burstprop experiments on their own networks), and writes
``benchmarks/results/rule_speed.json`` and ``rule_speed.md``. The time of an epoch
includes the evaluation after it, which for relaxation-based rules (EP) is part of
their cost.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

from dendnotes import data, reproduce

RESULTS = Path(__file__).resolve().parent / "results"


SPEED_LR = 0.05  # any stable rate: time per epoch does not depend on it


def measure(dataset: str, epochs: int, device: str, skip: tuple[str, ...]) -> list[dict]:
    """Seconds per epoch of every compare-* rule (the shared benchmark's at a fixed rate, no search)."""
    split = data.load(dataset)  # load once up front so no rule pays for it
    recipes = reproduce.comparison_recipes()

    def run(name: str, n_epochs: int) -> tuple[str, float]:
        key = name.removeprefix("compare-")
        if key in recipes:
            history, rule = reproduce.train_recipe(recipes[key], split, SPEED_LR, n_epochs, 0, device, progress=False)
            return ("Readout only" if key == "readout" else rule.name), history.final("test_accuracy")
        result = reproduce.experiments()[name].run(dataset=dataset, epochs=n_epochs, seed=0, device=device)
        return result["config"]["rule"], result["history"]["metrics"]["test_accuracy"][-1]

    # Warm up (thread pools, allocator, lazy imports) so the first rule timed pays no start-up cost.
    run("compare-bp", 1)
    rows = []
    for name in reproduce.experiments():
        if not name.startswith("compare-") or name in skip:
            continue
        start = time.perf_counter()
        rule, accuracy = run(name, epochs)
        seconds = (time.perf_counter() - start) / epochs
        rows.append({"experiment": name, "rule": rule, "seconds_per_epoch": seconds, "final_test_accuracy": accuracy})
        print(f"{name:24s} {seconds:8.2f} s/epoch", flush=True)
    bp = next(r["seconds_per_epoch"] for r in rows if r["experiment"] == "compare-bp")
    for row in rows:
        row["ratio_to_bp"] = row["seconds_per_epoch"] / bp
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip", nargs="*", default=["compare-sd-spiking"],
                        help="experiments not to time (default: the spiking model, ~100x backprop)")
    args = parser.parse_args()
    rows = measure(args.dataset, args.epochs, args.device, tuple(args.skip))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"dataset": args.dataset, "epochs": args.epochs, "device": args.device, "hardware": reproduce.hardware(),
            "learning_rate": SPEED_LR, "skipped": list(args.skip),
            "git_commit": commit, "date": datetime.date.today().isoformat()}
    RESULTS.mkdir(exist_ok=True)
    reproduce.write_json_atomically(RESULTS / "rule_speed.json", {"meta": meta, "rows": rows})
    lines = [
        "# Training time per epoch, relative to backprop",
        "",
        f"`python benchmarks/rule_speed.py --dataset {args.dataset} --epochs {args.epochs} --device {args.device}`, "
        f"{meta['date']}, commit {commit}, {meta['hardware']['processor']} ({meta['hardware']['cpu_count']} cores), "
        f"torch {meta['hardware']['torch']} with {meta['hardware']['torch_threads']} threads, "
        f"on a machine shared with other jobs (compare ratios, not absolute times). Not timed: {', '.join(args.skip) or 'none'}.",
        "",
        f"| rule | experiment | s / epoch | x backprop | test accuracy (lr {SPEED_LR}, not tuned) |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {r['rule']} | {r['experiment']} | {r['seconds_per_epoch']:.2f} | {r['ratio_to_bp']:.1f} | "
              f"{r['final_test_accuracy']:.3f} |" for r in rows]
    (RESULTS / "rule_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
