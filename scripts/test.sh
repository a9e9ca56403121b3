#!/usr/bin/env bash
# Run the test suite: unit tests (tests/) and every notebook in book/
# (executed by nbval; a notebook passes when every cell runs without error,
# so its assert cells hold).  The browser check is separate:
# scripts/browser_test.sh.
#
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh -k 02_backprop       # extra arguments go to pytest
#   bash scripts/test.sh -x -q                # stop at the first failure
#   DENDNOTES_SKIP_NOTEBOOKS=1 bash scripts/test.sh   # unit tests only (CI runs the
#       notebooks from the installed wheel instead: scripts/test_fresh_install.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"

bash "$ROOT/scripts/setup.sh"

TARGETS=(tests book)
if [ -n "${DENDNOTES_SKIP_NOTEBOOKS:-}" ]; then
    echo "[test] DENDNOTES_SKIP_NOTEBOOKS is set: unit tests only, no notebook from book/"
    TARGETS=(tests)
fi

set +e
"$VENV/bin/python" -m pytest "${TARGETS[@]}" \
    --nbval-lax --nbval-cell-timeout=300 \
    --ignore=tests/browser \
    "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "[test] ERROR: pytest collected no tests; that is a failure here" >&2
fi
exit "$rc"
