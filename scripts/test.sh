#!/usr/bin/env bash
# Run the test suite: unit tests (tests/) and every notebook in book/
# (executed by nbval; a notebook passes when every cell runs without error,
# so its assert cells hold).  The browser check is separate:
# scripts/browser_test.sh.
#
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh -k 02_backprop       # extra arguments go to pytest
#   bash scripts/test.sh -x -q                # stop at the first failure
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"

bash "$ROOT/scripts/setup.sh"

set +e
"$VENV/bin/python" -m pytest tests book \
    --nbval-lax --nbval-cell-timeout=300 \
    --ignore=tests/browser \
    "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "[test] ERROR: pytest collected no tests; that is a failure here" >&2
fi
exit "$rc"
