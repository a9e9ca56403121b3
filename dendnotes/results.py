"""Read the JSON files that ``python -m dendnotes.reproduce`` writes, for the comparison chapter."""

from __future__ import annotations

import json
from pathlib import Path


def data_root() -> Path:
    """Where results/ and benchmarks/results/ are: the checkout, else the copy shipped in the wheel."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "results").is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_data"


# The folder holding results/ and benchmarks/results/ (named for the checkout, where it usually is).
REPO_ROOT = data_root()

REQUIRED = ("experiment", "dataset", "epochs", "config", "history", "final_test_accuracy", "wall_time_s",
            "hardware", "command")

# Test errors the papers report, confirmed from the papers (see the book's references).
# Each is for the paper's own network and schedule, not for the shared benchmark's.
PAPER_TEST_ERROR = {
    ("FA", "mnist"): (2.1, "Lillicrap et al. 2016: 784-1000-10 sigmoid"),
    ("DFA", "mnist"): (1.45, "Nøkland 2016: permutation-invariant MNIST"),
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
