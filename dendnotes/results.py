"""Read the JSON files that ``python -m dendnotes.reproduce`` writes, for the comparison chapter."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

# The checkout this package was installed from: where results/ and benchmarks/ live.
REPO_ROOT = Path(__file__).resolve().parents[1]

REQUIRED = ("experiment", "dataset", "epochs", "config", "history", "final_test_accuracy", "wall_time_s",
            "hardware", "command")

# Test errors the papers report, confirmed from the papers (see the book's references).
# Each is for the paper's own network and schedule, not for the shared benchmark's.
PAPER_TEST_ERROR = {
    ("FA", "mnist"): (2.1, "Lillicrap et al. 2016: 784-1000-10 sigmoid"),
    ("DFA", "mnist"): (1.45, "Nøkland 2016: permutation-invariant MNIST, 2x800 tanh, with dropout"),
    ("SD", "mnist"): (4.1, "Guerguiev et al. 2017: 784-500-10, 60 epochs"),
}


def load_results(folder: str | Path) -> list[dict]:
    """Every result file in ``folder``, checked for the fields the book relies on."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}; run `python -m dendnotes.reproduce --list`")
    results = []
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        missing = [key for key in REQUIRED if key not in result]
        if missing:
            raise ValueError(f"{path.name} lacks {missing}: was it written by python -m dendnotes.reproduce?")
        if result["final_test_accuracy"] != result["history"]["metrics"]["test_accuracy"][-1]:
            raise ValueError(f"{path.name}: final_test_accuracy does not match its own history")
        result["file"] = path.name
        results.append(result)
    return results


def markdown_table(results: list[dict]) -> str:
    """One row per result: rule, dataset, test accuracy, epochs, wall time, hardware, command."""
    rows = [
        "| rule | dataset | test accuracy | epochs | wall time | hardware | command |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r["dataset"], -r["final_test_accuracy"])):
        hardware = r["hardware"].get("gpu") or f"CPU, {r['hardware']['cpu_count']} cores"
        rows.append(
            f"| {r['config']['rule']} | {r['dataset']} | {r['final_test_accuracy']:.1%} | {r['epochs']} | "
            f"{r['wall_time_s'] / 60:.1f} min | {hardware} | `{r['command']}` |"
        )
    return "\n".join(rows)


# The shared benchmark's rules (dendnotes.reproduce.comparison_recipes), control first.
BENCHMARK_RULES = ("Readout only", "BP", "FA", "DFA", "SS", "KP", "NP", "EP")
BENCHMARK_SIZES = [784, 256, 256, 10]


def benchmark_groups(results: list[dict], sizes: list[int] = BENCHMARK_SIZES) -> dict[str, list[dict]]:
    """The shared benchmark's runs (``compare-*`` files on ``sizes``), grouped by rule, seeds in order.

    Groups follow BENCHMARK_RULES; every run of one rule must share dataset and epochs."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        if r["experiment"].startswith("compare-") and r["config"].get("sizes") == sizes:
            groups.setdefault(r["config"]["rule"], []).append(r)
    for rule, runs in groups.items():
        runs.sort(key=lambda r: r["seed"])
        settings = {(r["dataset"], r["epochs"]) for r in runs}
        if len(settings) > 1:
            raise ValueError(f"{rule}: runs mix datasets/epochs {sorted(settings)}; keep one protocol per folder")
    order = [rule for rule in BENCHMARK_RULES if rule in groups] + sorted(set(groups) - set(BENCHMARK_RULES))
    return {rule: groups[rule] for rule in order}


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def final_metric(run: dict, metric: str) -> float:
    return run["history"]["metrics"][metric][-1]


def benchmark_summary(groups: dict[str, list[dict]]) -> str:
    """Markdown table: per rule, seeds, chosen learning rate, and mean +- sd over seeds of the
    final test and train accuracy and of the hidden layers' update angles to backprop."""
    rows = [
        "| rule | seeds | lr (chosen on validation) | test accuracy (%) | train accuracy (%) "
        "| update angle, layer 1 (deg) | layer 2 (deg) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(runs, metric, scale=1.0):
        if metric not in runs[0]["history"]["metrics"]:
            return "-"
        mean, sd = mean_sd(scale * final_metric(r, metric) for r in runs)
        return f"{mean:.1f} ± {sd:.1f}"

    for rule, runs in groups.items():
        rows.append(
            f"| {rule} | {len(runs)} | {runs[0]['config']['lr']:g} | {cell(runs, 'test_accuracy', 100)} | "
            f"{cell(runs, 'train_accuracy', 100)} | {cell(runs, 'update_angle_1')} | {cell(runs, 'update_angle_2')} |"
        )
    return "\n".join(rows)
