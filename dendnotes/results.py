"""Read, check and name the JSON files that ``python -m dendnotes.reproduce`` writes.

A result file is ``<experiment>__<dataset>__e<epochs>__seed<seed>.json``: every setting
that makes two runs differ is in its name, so no run replaces another's result. Its
``sha256`` field is the SHA-256 of the rest of its content, so a hand-edited file is caught.

    python -m dendnotes.results check [FOLDER]   # validate every result (default: results/)
    python -m dendnotes.results seal FILE...     # add the checksum and the canonical name
                                                 # to files written by older versions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from .files import write_json_atomically


def data_root() -> Path:
    """Where results/ and benchmarks/results/ are: the checkout, else the copy shipped in the wheel."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "results").is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_data"


# The folder holding results/ and benchmarks/results/ (named for the checkout, where it usually is).
REPO_ROOT = data_root()

REQUIRED = ("experiment", "dataset", "epochs", "seed", "config", "history", "final_test_accuracy", "wall_time_s",
            "hardware", "command")

CHECKSUM_KEY = "sha256"

# Test errors the papers report, confirmed from the papers (see the book's references).
# Each is for the paper's own network and schedule, not for the shared benchmark's.
PAPER_TEST_ERROR = {
    ("FA", "mnist"): (2.1, "Lillicrap et al. 2016: 784-1000-10 sigmoid"),
    ("DFA", "mnist"): (1.45, "Nøkland 2016: permutation-invariant MNIST, 2x800 tanh, with dropout"),
    ("SD", "mnist"): (4.1, "Guerguiev et al. 2017: 784-500-10, 60 epochs"),
}


class ResultFileError(ValueError):
    """A result file is unreadable, inconsistent, edited, or duplicates another."""


def result_name(experiment: str, dataset: str, epochs: int, seed: int) -> str:
    """The file name of a run: every setting that makes two runs differ."""
    return f"{experiment}__{dataset}__e{epochs}__seed{seed}.json"


def content_checksum(result: dict) -> str:
    """SHA-256 of the result's content without its own checksum (canonical JSON)."""
    body = {key: value for key, value in result.items() if key not in (CHECKSUM_KEY, "file")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sealed(result: dict) -> dict:
    """``result`` as JSON will hold it (lists, string keys), with its checksum added."""
    stored = json.loads(json.dumps({k: v for k, v in result.items() if k != "file"}))
    return {**stored, CHECKSUM_KEY: content_checksum(stored)}


def _get(result: dict, dotted: str, kind: type | tuple, name: str):
    """The value at ``dotted`` (e.g. "history.metrics"), which must be of type ``kind``."""
    value = result
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ResultFileError(f"{name} lacks {dotted!r}: was it written by python -m dendnotes.reproduce?")
        value = value[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise ResultFileError(f"{name}: {dotted} is {type(value).__name__}, expected "
                              f"{' or '.join(k.__name__ for k in kinds)}")
    return value


def check_content(result, name: str) -> None:
    """Raise ``ResultFileError`` naming ``name`` unless ``result`` is a consistent result.

    Checks the fields and their types, accuracies in [0, 1], one history entry per epoch
    plus the untrained one, and the final accuracy against the history."""
    if not isinstance(result, dict):
        raise ResultFileError(f"{name} holds a JSON {type(result).__name__}, not an object: "
                              "was it written by python -m dendnotes.reproduce?")
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        raise ResultFileError(f"{name} lacks {missing}: was it written by python -m dendnotes.reproduce?")
    for dotted, kind in (("experiment", str), ("dataset", str), ("command", str), ("config.rule", str),
                         ("wall_time_s", (int, float)), ("hardware.cpu_count", int), ("seed", int)):
        _get(result, dotted, kind, name)
    epochs = _get(result, "epochs", int, name)
    logged = _get(result, "history.epochs", list, name)
    accuracy = _get(result, "history.metrics.test_accuracy", list, name)
    if logged != list(range(epochs + 1)) or len(accuracy) != epochs + 1:
        raise ResultFileError(f"{name}: says epochs={epochs} but its history has {len(logged)} epochs and "
                              f"{len(accuracy)} test accuracies (expected {epochs + 1}: epoch 0 to {epochs})")
    final = _get(result, "final_test_accuracy", (int, float), name)
    for value in (*accuracy, final):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise ResultFileError(f"{name}: test accuracy {value!r} is not a number in [0, 1]")
    if final != accuracy[-1]:
        raise ResultFileError(f"{name}: final_test_accuracy {final} does not match its own history ({accuracy[-1]})")


def check_result(result, name: str) -> None:
    """``check_content``, plus the file name and the checksum."""
    check_content(result, name)
    expected = result_name(result["experiment"], result["dataset"], result["epochs"], result["seed"])
    if Path(name).name != expected:
        raise ResultFileError(f"{name}: its content is the run {expected}; a result file keeps the name it was "
                              "written with (rename it back, or rerun python -m dendnotes.reproduce)")
    if CHECKSUM_KEY not in result:
        raise ResultFileError(f"{name} has no {CHECKSUM_KEY} checksum; if its content is trusted, add one with "
                              f"python -m dendnotes.results seal {name}")
    if result[CHECKSUM_KEY] != content_checksum(result):
        raise ResultFileError(f"{name}: content does not match its checksum, so it was edited after it was written; "
                              f"restore it (git checkout -- {name}) or rerun its command: {result['command']}")


def read_json(path: Path):
    """The parsed JSON in ``path``; a ``ResultFileError`` naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultFileError(f"{path}: not a valid JSON file ({err}); delete it and rerun the run that wrote it") from err


def read_result(path: str | Path) -> dict:
    """One checked result file, with its name in ``"file"``."""
    path = Path(path)
    result = read_json(path)
    check_result(result, str(path))
    result["file"] = path.name
    return result


def load_results(folder: str | Path) -> list[dict]:
    """Every result file in ``folder``, each checked; per experiment and dataset one protocol
    (one epoch count), so no smoke run sits silently beside a long run. Names carry the
    experiment, dataset, epochs and seed, and each file's content must match its name, so
    no run is counted twice."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}; run `python -m dendnotes.reproduce --list`")
    results = [read_result(path) for path in sorted(folder.glob("*.json"))]
    files = defaultdict(list)
    for r in results:
        files[(r["experiment"], r["dataset"])].append(r)
    for (experiment, dataset), runs in files.items():
        if len({r["epochs"] for r in runs}) > 1:
            names = ", ".join(r["file"] for r in runs)
            raise ResultFileError(f"{folder}: results of {experiment} on {dataset} mix epoch counts ({names}); "
                                  "keep one protocol per experiment and dataset: move the others out of the folder")
    return results


def seal_file(path: str | Path) -> Path:
    """Check a result written without a checksum, add one, and give it its canonical name."""
    path = Path(path)
    result = read_json(path)
    check_content(result, str(path))
    target = path.with_name(result_name(result["experiment"], result["dataset"], result["epochs"], result["seed"]))
    write_json_atomically(target, sealed(result), overwrite=target == path)
    if target != path:
        path.unlink()
    return target


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


def rule_cost_table(rows: list[dict], target_accuracy: float) -> str:
    """The cost table of ``benchmarks/rule_speed.py``: per rule, seconds per epoch, ratio to
    backprop, the committed runs behind it, and the epochs and seconds to ``target_accuracy``."""
    target = f"{100 * target_accuracy:g}%"

    def cell(value, fmt: str, missing: str) -> str:
        return missing if value is None else format(value, fmt)

    lines = [f"| rule | experiment | s / epoch | x backprop | committed runs | epochs to {target} | time to {target} (s) |",
             "|---|---|---:|---:|---|---:|---:|"]
    lines += [f"| {r['rule']} | {r['experiment']} | {r['seconds_per_epoch']:.2f} | {r['ratio_to_bp']:.1f} | "
              f"{r['seeds']} seed(s) x {r['committed_epochs']} epochs | "
              f"{cell(r['epochs_to_target'], 'd', 'not reached')} | {cell(r['seconds_to_target'], '.0f', '-')} |"
              for r in rows]
    return "\n".join(lines)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dendnotes.results", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate every result file in a folder")
    check.add_argument("folder", nargs="?", type=Path, default=REPO_ROOT / "results")
    seal = commands.add_parser("seal", help="add checksums and canonical names to result files")
    seal.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            print(f"{len(load_results(args.folder))} result files in {args.folder} are consistent")
        else:
            for path in args.files:
                print(f"sealed {path} -> {seal_file(path)}")
    except (OSError, ValueError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
