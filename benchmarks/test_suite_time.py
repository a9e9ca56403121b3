"""Time the test suite: the pytest part of the README's test command
(``bash scripts/test.sh``), with the time of every notebook.

    .venv/bin/python benchmarks/test_suite_time.py [--output FILE] [-- PYTEST ARGS]

Targets on the reference machine (2 CPU cores): the whole suite under
15 minutes, each notebook under 90 seconds.  Writes a Markdown table to
benchmarks/results/test_suite_time.md (date, machine, git commit) and exits
non-zero when a test failed or a target was missed.

This is not a test module (it has no test functions); run it by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "test_suite_time.md"

SUITE_TARGET_S = 15 * 60
NOTEBOOK_TARGET_S = 90

# The pytest part of scripts/test.sh, kept in step with it.
PYTEST_ARGS = [
    "tests", "book",
    "--nbval-lax", "--nbval-cell-timeout=300",
    "--ignore=tests/browser",
]


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def git_description() -> str:
    commit = run(["git", "rev-parse", "--short=12", "HEAD"]) or "no commit"
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"])
    return commit + (" (with uncommitted changes)" if dirty else "")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:  # pragma: no cover - torch is a requirement
        torch_version = ""
    try:
        load = ", load average %.1f before the run" % os.getloadavg()[0]
    except OSError:
        load = ""
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, "
        f"Python {platform.python_version()}{torch_version}{load}"
    )


def parse_junit(path: Path) -> tuple[dict[str, float], dict[str, int], list[tuple[float, str]]]:
    """Seconds per file, outcome counts, and (seconds, test id) per test."""
    per_file: dict[str, float] = defaultdict(float)
    outcomes: dict[str, int] = defaultdict(int)
    tests = []
    for case in ET.parse(path).getroot().iter("testcase"):
        seconds = float(case.get("time", 0.0))
        file = case.get("file") or case.get("classname", "?").replace(".", "/")
        per_file[file] += seconds
        tests.append((seconds, f"{file}::{case.get('name')}"))
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes["failed"] += 1
        elif case.find("skipped") is not None:
            outcomes["skipped"] += 1
        else:
            outcomes["passed"] += 1
    return dict(per_file), dict(outcomes), sorted(tests, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Markdown file to write")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    machine = machine_description()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, "-q", "-o", "junit_family=xunit1",
               f"--junitxml={junit}", *args.pytest_args]
        print("[benchmark]", " ".join(cmd[1:]), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT)
        wall = time.perf_counter() - start
        if not junit.is_file():
            print(f"[benchmark] pytest wrote no report (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode or 1
        per_file, outcomes, tests = parse_junit(junit)

    notebooks = sorted(f for f in per_file if f.endswith(".ipynb"))
    unit_files = sorted(f for f in per_file if not f.endswith(".ipynb"))
    rows = [("whole suite (wall clock)", wall, SUITE_TARGET_S)]
    rows += [(nb, per_file[nb], NOTEBOOK_TARGET_S) for nb in notebooks]
    missed = [name for name, seconds, target in rows if seconds >= target]
    ok = proc.returncode == 0 and not missed and notebooks

    summary = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
    lines = [
        "# Test suite time",
        "",
        "Written by `benchmarks/test_suite_time.py`: the pytest part of `bash scripts/test.sh`",
        "(unit tests and every notebook, run by nbval).",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Commit: {git_description()}",
        f"- Machine: {machine}",
        f"- Command: `python -m pytest {' '.join(PYTEST_ARGS + args.pytest_args)}`",
        f"- Result: {summary or 'no tests'} (pytest exit code {proc.returncode})",
        f"- Targets met: {'yes' if ok else 'NO'}",
        "",
        "| what | time (s) | target (s) | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, seconds, target in rows:
        lines.append(f"| {name} | {seconds:.1f} | < {target} | {'yes' if seconds < target else 'NO'} |")
    unit_total = sum(per_file[f] for f in unit_files)
    lines.append(f"| unit tests ({len(unit_files)} files) | {unit_total:.1f} | | |")
    lines += ["", "Slowest tests and notebook cells:", "", "| time (s) | test |", "| ---: | --- |"]
    lines += [f"| {s:.1f} | `{name}` |" for s, name in tests[:10]]
    text = "\n".join(lines) + "\n"

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    print(f"[benchmark] written to {args.output}")
    if not notebooks:
        print("[benchmark] no notebook was run", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
