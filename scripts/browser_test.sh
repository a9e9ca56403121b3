#!/usr/bin/env bash
# Browser check of the built book: build it (scripts/build_book.sh --all),
# then open every page in headless Chromium (tests/browser/).  Screenshots of
# each page's first screen go to _build/screenshots/.
#
#   bash scripts/browser_test.sh            # build + check
#   DENDNOTES_SKIP_BUILD=1 bash scripts/browser_test.sh   # check the existing build
#
# Extra arguments go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"

bash "$ROOT/scripts/setup.sh" --book --browser

if [ -z "${DENDNOTES_SKIP_BUILD:-}" ]; then
    # A clean build: no page left over from an earlier table of contents.
    rm -rf "$ROOT/_build/html"
    DENDNOTES_NO_OPEN=1 bash "$ROOT/scripts/build_book.sh" --all
fi
rm -rf "$ROOT/_build/screenshots"

export DENDNOTES_BROWSER_TEST=1
set +e
"$VENV/bin/python" -m pytest tests/browser "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "[browser] ERROR: pytest collected no browser tests" >&2
fi
[ -d "$ROOT/_build/screenshots" ] && echo "[browser] screenshots in $ROOT/_build/screenshots/"
exit "$rc"
