"""Cost of every rule in the shared benchmark: time per epoch and time to a test accuracy.

    python benchmarks/rule_speed.py [--dataset fashion-mnist] [--epochs 1] [--target 0.84] [--device cpu]

Times ``--epochs`` epochs of every ``compare-*`` experiment of ``python -m dendnotes.reproduce``
in this one process, on the same machine and data (the shared benchmark's rules on its
784-256-256-10 layer sizes at the learning rate their committed runs chose; the
segregated-dendrites and burstprop experiments on their own networks). The time of an epoch
includes the evaluation after it, which for relaxation-based rules (EP) is part of their cost.

Time to a result: the committed runs in ``results/`` (same dataset) give, per rule, the first
epoch at which the mean test accuracy over seeds reaches ``--target``; times the seconds per
epoch measured here, that is the training time a reader needs to reach the target on this
machine. Writes ``benchmarks/results/rule_speed.json`` and ``rule_speed.md``.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import time
from pathlib import Path

from dendnotes import data, reproduce
from dendnotes.results import REPO_ROOT, load_results, rule_cost_table

RESULTS = Path(__file__).resolve().parent / "results"
FALLBACK_LR = 0.05  # for a rule without committed runs: time per epoch hardly depends on the rate


def epochs_to_target(runs: list[dict], target: float) -> int | None:
    """First epoch at which the mean test accuracy over ``runs`` reaches ``target`` (None: never)."""
    curves = [r["history"]["metrics"]["test_accuracy"] for r in runs]
    for epoch, accuracies in zip(runs[0]["history"]["epochs"], zip(*curves)):
        if statistics.fmean(accuracies) >= target:
            return epoch
    return None


def committed_runs(dataset: str) -> dict[str, list[dict]]:
    """The committed ``compare-*`` runs on ``dataset``, by experiment name."""
    runs: dict[str, list[dict]] = {}
    for run in load_results(REPO_ROOT / "results"):
        if run["experiment"].startswith("compare-") and run["dataset"] == dataset:
            runs.setdefault(run["experiment"], []).append(run)
    return runs


def measure(dataset: str, epochs: int, device: str, skip: tuple[str, ...], committed: dict) -> list[dict]:
    """Seconds per epoch of every compare-* rule (the shared benchmark's without the rate search)."""
    split = data.load(dataset)  # load once up front so no rule pays for it
    recipes = reproduce.comparison_recipes()

    def run(name: str, n_epochs: int) -> str:
        key = name.removeprefix("compare-")
        if key in recipes:
            lr = committed[name][0]["config"]["lr"] if name in committed else FALLBACK_LR
            _, rule = reproduce.train_recipe(recipes[key], split, lr, n_epochs, 0, device, progress=False)
            return "Readout only" if key == "readout" else rule.name
        return reproduce.experiments()[name].run(dataset=dataset, epochs=n_epochs, seed=0, device=device)["config"]["rule"]

    # Warm up (thread pools, allocator, lazy imports) so the first rule timed pays no start-up cost.
    run("compare-bp", 1)
    rows = []
    for name in reproduce.experiments():
        if not name.startswith("compare-") or name in skip:
            continue
        start = time.perf_counter()
        rule = run(name, epochs)
        seconds = (time.perf_counter() - start) / epochs
        rows.append({"experiment": name, "rule": rule, "seconds_per_epoch": seconds})
        print(f"{name:28s} {seconds:8.2f} s/epoch", flush=True)
    bp = next(r["seconds_per_epoch"] for r in rows if r["experiment"] == "compare-bp")
    for row in rows:
        row["ratio_to_bp"] = row["seconds_per_epoch"] / bp
    return rows


def add_time_to_target(rows: list[dict], committed: dict, target: float) -> None:
    """Each row gains the committed runs' seeds and epochs, and the epochs and seconds to ``target``."""
    for row in rows:
        runs = committed.get(row["experiment"], [])
        epochs = epochs_to_target(runs, target) if runs else None
        row.update(seeds=len(runs), committed_epochs=runs[0]["epochs"] if runs else None, epochs_to_target=epochs,
                   seconds_to_target=None if epochs is None else epochs * row["seconds_per_epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.84, help="test accuracy to reach (default 0.84)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip", nargs="*", default=["compare-sd-spiking"],
                        help="experiments not to time (default: the spiking model, ~100x backprop)")
    args = parser.parse_args()
    if not 0 < args.target < 1:
        parser.error(f"--target must be an accuracy between 0 and 1, got {args.target}")
    committed = committed_runs(args.dataset)
    rows = measure(args.dataset, args.epochs, args.device, tuple(args.skip), committed)
    add_time_to_target(rows, committed, args.target)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"dataset": args.dataset, "epochs": args.epochs, "target_accuracy": args.target, "device": args.device,
            "hardware": reproduce.hardware(), "skipped": list(args.skip),
            "git_commit": commit, "date": datetime.date.today().isoformat()}
    RESULTS.mkdir(exist_ok=True)
    reproduce.write_json_atomically(RESULTS / "rule_speed.json", {"meta": meta, "rows": rows}, overwrite=True)
    target = f"{100 * args.target:g}%"
    lines = [
        "# Cost of each rule: time per epoch and time to a test accuracy",
        "",
        f"`python benchmarks/rule_speed.py --dataset {args.dataset} --epochs {args.epochs} --target {args.target}`, "
        f"{meta['date']}, commit {commit}, {meta['hardware']['processor']} ({meta['hardware']['cpu_count']} cores), "
        f"torch {meta['hardware']['torch']} with {meta['hardware']['torch_threads']} thread(s); all rules timed in this one "
        f"run (compare ratios across machines, not absolute times). Not timed: {', '.join(args.skip) or 'none'}.",
        "",
        f"Epochs to {target}: the first epoch at which the committed runs' mean test accuracy over seeds reaches {target} "
        f"(\"not reached\": not within the committed epochs); time to {target} = those epochs x the seconds per epoch "
        "measured here. The shared benchmark's rules (784-256-256-10) ran at the rate their validation search chose; "
        "the 784-500-10 rows are the older single-seed runs on their own networks.",
        "",
        rule_cost_table(rows, args.target),
    ]
    (RESULTS / "rule_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
