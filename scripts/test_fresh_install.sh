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
# Dependencies come from pip's configured index (and pip's cache), plus the
# PyTorch CPU index (DENDNOTES_TORCH_INDEX; empty for none) when it can be
# reached: CPU torch, not the default Linux wheel with gigabytes of CUDA.
# Each chapter runs in its own pytest process with a new kernel of the new
# environment (--nbval-current-env), from its own empty folder, two chapters
# at a time (DENDNOTES_FRESH_JOBS=1 for one at a time).
#
# Slow (every notebook again, plus installing torch): not part of
# scripts/test.sh.  CI (.ci/run) runs the notebooks this way instead of from
# the checkout; the GitHub workflow runs it as its own job.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] && [ -n "${DENDNOTES_FRESH_OFFLINE:-}" ] && PY="$VENV/bin/python"
say() { printf '[fresh-install] %s\n' "$*"; }
# pip's notes about index folders this machine lacks are noise, not errors.
quiet_pip() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; return "${PIPESTATUS[0]}"; }
begin=$(date +%s)
JOBS="${DENDNOTES_FRESH_JOBS:-2}"
case "$JOBS" in ''|*[!0-9]*|0) echo "[fresh-install] DENDNOTES_FRESH_JOBS must be a positive integer, not '$JOBS'" >&2; exit 2;; esac

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dendnotes-fresh.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# 1. The wheel, built from a copy of the sources (nothing is written into the checkout).
mkdir -p "$WORK/source" "$WORK/dist"
cp "$ROOT/pyproject.toml" "$WORK/source/"
cp -r "$ROOT/dendnotes" "$ROOT/results" "$WORK/source/"
mkdir -p "$WORK/source/benchmarks" && cp -r "$ROOT/benchmarks/results" "$WORK/source/benchmarks/"
say "building the wheel"
if [ -n "${DENDNOTES_FRESH_OFFLINE:-}" ]; then
    quiet_pip "$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/source"
else
    quiet_pip "$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/source"
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
    TORCH_INDEX="${DENDNOTES_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
    if [ -n "$TORCH_INDEX" ] && ! "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \
            "$TORCH_INDEX" >/dev/null 2>&1; then
        say "the PyTorch CPU index $TORCH_INDEX cannot be reached: torch comes from pip's configured index"
        TORCH_INDEX=""
    fi
    say "installing $(basename "$WHEEL") with its dependencies and nbval${TORCH_INDEX:+ (torch from $TORCH_INDEX)}"
    quiet_pip "$FRESH" -m pip install --quiet ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "$WHEEL" nbval
fi
say "environment ready after $(( $(date +%s) - begin )) s"

# 3. Each chapter alone, from an empty folder: no checkout, no results/ next to it.
CHAPTERS=("$@")
if [ "${#CHAPTERS[@]}" = 0 ]; then
    for nb in "$ROOT"/book/[0-9][0-9]_*.ipynb; do CHAPTERS+=("$(basename "$nb" .ipynb)"); done
fi
# Two chapters at a time (DENDNOTES_FRESH_JOBS): each is one single-threaded
# kernel, so on two cores this halves the wall time; each chapter's output is
# kept in its own log and printed whole when it ends.
run_chapter() {
    local chapter="$1" run="$WORK/run-$1" start
    mkdir -p "$run"
    cp "$ROOT/book/$chapter.ipynb" "$run/"
    start=$(date +%s)
    if (cd "$run" && env -u PYTHONPATH "$FRESH" -m pytest -q -p no:cacheprovider --nbval-lax \
            --nbval-current-env --nbval-cell-timeout=300 "$chapter.ipynb") > "$WORK/$chapter.log" 2>&1; then
        echo "passed in $(( $(date +%s) - start )) s" > "$WORK/$chapter.status"
    else
        echo "FAILED after $(( $(date +%s) - start )) s" > "$WORK/$chapter.status"
    fi
}
report() {  # wait for a chapter, then print its log and status
    wait "$2" || true
    cat "$WORK/$1.log" 2>/dev/null || true
    say "$1 $(cat "$WORK/$1.status" 2>/dev/null || echo "FAILED (it did not start)")"
}
pids=() names=()
for chapter in "${CHAPTERS[@]}"; do
    say "$chapter: started"
    run_chapter "$chapter" & pids+=($!) names+=("$chapter")
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
        report "${names[0]}" "${pids[0]}"
        pids=("${pids[@]:1}") names=("${names[@]:1}")
    fi
done
for k in "${!pids[@]}"; do
    report "${names[$k]}" "${pids[$k]}"
done
failed=()
for chapter in "${CHAPTERS[@]}"; do
    grep -qs "^passed" "$WORK/$chapter.status" || failed+=("$chapter")
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "[fresh-install] FAILED: ${failed[*]}" >&2
    exit 1
fi
say "all ${#CHAPTERS[@]} chapters passed from the wheel in a new environment ($(( $(date +%s) - begin )) s in all)"
