#!/usr/bin/env bash
# Run every chapter the way a reader outside the checkout does (Colab, Binder,
# pip): build the dendnotes wheel, install it into a new virtual environment,
# copy the chapter notebooks into an empty temporary folder, and run each one
# under nbval in its own pytest process.  A chapter that needs a package
# pyproject.toml does not declare, or a file only the checkout has, fails here.
#
#   bash scripts/test_fresh_install.sh               # dependencies from the package index (network)
#   bash scripts/test_fresh_install.sh 01_credit_assignment   # only these chapters
#   DENDNOTES_FRESH_OFFLINE=1 bash scripts/test_fresh_install.sh
#       # offline: the new environment borrows its dependencies from .venv
#       # (DENDNOTES_VENV), so only the wheel and its data are tested
#
# Slow (every notebook again, plus installing torch): not part of
# scripts/test.sh; the GitHub workflow runs it as its own job.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] && [ -n "${DENDNOTES_FRESH_OFFLINE:-}" ] && PY="$VENV/bin/python"
say() { printf '[fresh-install] %s\n' "$*"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dendnotes-fresh.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# 1. The wheel, built from a copy of the sources (nothing is written into the checkout).
mkdir -p "$WORK/source" "$WORK/dist"
cp "$ROOT/pyproject.toml" "$WORK/source/"
cp -r "$ROOT/dendnotes" "$ROOT/results" "$WORK/source/"
mkdir -p "$WORK/source/benchmarks" && cp -r "$ROOT/benchmarks/results" "$WORK/source/benchmarks/"
say "building the wheel"
if [ -n "${DENDNOTES_FRESH_OFFLINE:-}" ]; then
    "$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/source"
else
    "$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/source"
fi
WHEEL="$(ls "$WORK"/dist/dendnotes-*.whl)"

# 2. A new virtual environment with the wheel (and its declared dependencies).
"$PY" -m venv "$WORK/venv"
FRESH="$WORK/venv/bin/python"
if [ -n "${DENDNOTES_FRESH_OFFLINE:-}" ]; then
    say "installing $(basename "$WHEEL") without dependencies; borrowing them from $VENV"
    "$FRESH" -m pip install --quiet --no-deps --no-index "$WHEEL"
    SITE="$("$FRESH" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # A plain path line: .pth files there (the checkout's editable install) are not read.
    "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$SITE/borrowed.pth"
else
    say "installing $(basename "$WHEEL") with its dependencies (CPU torch) and nbval"
    "$FRESH" -m pip install --quiet --upgrade pip
    "$FRESH" -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu "$WHEEL" nbval
fi

# 3. Each chapter alone, from an empty folder: no checkout, no results/ next to it.
CHAPTERS=("$@")
if [ "${#CHAPTERS[@]}" = 0 ]; then
    for nb in "$ROOT"/book/[0-9][0-9]_*.ipynb; do CHAPTERS+=("$(basename "$nb" .ipynb)"); done
fi
failed=()
for chapter in "${CHAPTERS[@]}"; do
    run="$WORK/run-$chapter"
    mkdir -p "$run"
    cp "$ROOT/book/$chapter.ipynb" "$run/"
    say "$chapter"
    start=$(date +%s)
    if (cd "$run" && env -u PYTHONPATH "$FRESH" -m pytest -q -p no:cacheprovider --nbval-lax \
            --nbval-cell-timeout=300 "$chapter.ipynb"); then
        say "$chapter passed in $(( $(date +%s) - start )) s"
    else
        failed+=("$chapter")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "[fresh-install] FAILED: ${failed[*]}" >&2
    exit 1
fi
say "all ${#CHAPTERS[@]} chapters passed from the wheel in a new environment"
