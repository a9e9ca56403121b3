#!/usr/bin/env bash
# Build the HTML book into _build/html (runs scripts/setup.sh first).
#
#   bash scripts/build_book.sh          # build (only changed pages are redone)
#   bash scripts/build_book.sh --all    # rebuild every page from scratch
#
# Extra arguments go to 'jupyter-book build'.  Every notebook is executed
# during the build; warnings are errors (-W -n --keep-going).  On a desktop
# the finished book is opened in the web browser (DENDNOTES_NO_OPEN=1 stops
# that).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"

bash "$ROOT/scripts/setup.sh" --book

echo "[build] jupyter-book build . -W -n --keep-going $*"
start=$(date +%s)
"$VENV/bin/jupyter-book" build . -W -n --keep-going "$@"
echo "[build] done in $(( $(date +%s) - start )) s"

INDEX="$ROOT/_build/html/index.html"
if [ ! -f "$INDEX" ]; then
    echo "[build] ERROR: $INDEX was not written" >&2
    exit 1
fi
echo "[build] the book is at: $INDEX"
echo "[build] open it with:   file://$INDEX"

# Open it for a person at a desktop; never in CI or over ssh without display.
if [ -z "${CI:-}" ] && [ -z "${DENDNOTES_NO_OPEN:-}" ] && [ -t 1 ]; then
    if [ "$(uname)" = Darwin ]; then
        open "$INDEX" >/dev/null 2>&1 || true
    elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null 2>&1; then
        xdg-open "$INDEX" >/dev/null 2>&1 &
    fi
fi
