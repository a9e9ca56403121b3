"""Training time per epoch of every rule in the shared benchmark, as a ratio to backprop's.

    python benchmarks/rule_speed.py [--dataset mnist-5k] [--epochs 2] [--device cpu]

Runs every ``compare-*`` experiment of ``python -m dendnotes.reproduce`` in this one
process, on the same machine and data, and writes
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


def measure(dataset: str, epochs: int, device: str) -> list[dict]:
    data.load(dataset)  # load once up front so no rule pays for it
    # Warm up (thread pools, allocator, lazy imports) so the first rule timed pays no start-up cost.
    reproduce.experiments()["compare-bp"].run(dataset=dataset, epochs=1, seed=0, device=device)
    rows = []
    for name, experiment in reproduce.experiments().items():
        if not name.startswith("compare-"):
            continue
        start = time.perf_counter()
        result = experiment.run(dataset=dataset, epochs=epochs, seed=0, device=device)
        seconds = (time.perf_counter() - start) / epochs
        rows.append({"experiment": name, "rule": result["config"]["rule"], "seconds_per_epoch": seconds,
                     "final_test_accuracy": result["history"]["metrics"]["test_accuracy"][-1]})
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
    args = parser.parse_args()
    rows = measure(args.dataset, args.epochs, args.device)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"dataset": args.dataset, "epochs": args.epochs, "device": args.device, "hardware": reproduce.hardware(),
            "git_commit": commit, "date": datetime.date.today().isoformat()}
    RESULTS.mkdir(exist_ok=True)
    reproduce.write_json_atomically(RESULTS / "rule_speed.json", {"meta": meta, "rows": rows})
    lines = [
        "# Training time per epoch, relative to backprop",
        "",
        f"`python benchmarks/rule_speed.py --dataset {args.dataset} --epochs {args.epochs} --device {args.device}`, "
        f"{meta['date']}, commit {commit}, {meta['hardware']['processor']} ({meta['hardware']['cpu_count']} cores), "
        f"torch {meta['hardware']['torch']} with {meta['hardware']['torch_threads']} threads.",
        "",
        "| rule | experiment | s / epoch | x backprop | test accuracy |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {r['rule']} | {r['experiment']} | {r['seconds_per_epoch']:.2f} | {r['ratio_to_bp']:.1f} | "
              f"{r['final_test_accuracy']:.3f} |" for r in rows]
    (RESULTS / "rule_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
