#!/usr/bin/env bash
# Set up everything dendnotes needs on this machine.  Safe to run again and
# again: each step is skipped when its result is already there.
#
#   bash scripts/setup.sh            # venv + Python packages + MathJax + widgets + data
#   bash scripts/setup.sh --browser  # ... and Chromium for the browser check
#   bash scripts/setup.sh --book     # ... and fail if MathJax or the widget manager is missing
#
# Steps:
#   1. Debian packages the tests need (only when run as root on Debian/Ubuntu;
#      otherwise it prints what to install): dataset-fashion-mnist, and with
#      --browser also chromium.
#   2. A virtual environment in .venv (python3.11, else python3), with
#      requirements.txt and the dendnotes package (editable, no deps).
#   3. MathJax 3 and the Jupyter widget manager (@jupyter-widgets/html-manager)
#      from the npm registry into _vendor/ (gitignored); the book serves them
#      from _build/html/_static/ (mathjax/, widgets/) instead of a CDN.
#
# Environment: DENDNOTES_VENV (default .venv) picks another virtualenv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MATHJAX_VERSION="3.2.2"
# The html-manager release that matches ipywidgets 8.1 (requirements.txt).
WIDGETS_VERSION="1.0.15"
VENV="${DENDNOTES_VENV:-$ROOT/.venv}"
WANT_BROWSER=0
NEED_MATHJAX=0
for arg in "$@"; do
    case "$arg" in
        --browser) WANT_BROWSER=1; NEED_MATHJAX=1 ;;
        --book) NEED_MATHJAX=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

say() { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------
deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

APT_PACKAGES=(dataset-fashion-mnist)
if [ "$WANT_BROWSER" = 1 ]; then
    APT_PACKAGES+=(chromium)
fi
if ! command -v npm >/dev/null 2>&1 && { [ ! -f "$ROOT/_vendor/static/mathjax/.version-$MATHJAX_VERSION" ] \
        || [ ! -f "$ROOT/_vendor/static/widgets/.version-$WIDGETS_VERSION" ]; }; then
    # npm is only needed to fetch MathJax and the widget manager; Debian's npm
    # package brings Node.
    APT_PACKAGES+=(npm)
fi

MISSING=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${APT_PACKAGES[@]}"; do
        deb_installed "$pkg" || MISSING+=("$pkg")
    done
    if [ "${#MISSING[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing Debian packages: ${MISSING[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
        else
            warn "missing Debian packages: ${MISSING[*]}"
            warn "install them with:  sudo apt-get install ${MISSING[*]}"
        fi
    fi
else
    warn "not a Debian system: install by hand what the tests need:"
    warn "  Fashion-MNIST (or let dendnotes download it, see README 'Data'),"
    [ "$WANT_BROWSER" = 1 ] && warn "  Chromium (set DENDNOTES_CHROMIUM to its path),"
    warn "  Node.js + npm (for MathJax)."
fi

# ---------------------------------------------------------------------------
# 2. Python virtual environment
# ---------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    PY=""
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
    done
    if [ -z "$PY" ]; then
        echo "[setup] ERROR: no python3 found; install Python 3.11" >&2
        exit 1
    fi
    say "creating virtual environment $VENV with $($PY --version)"
    if ! "$PY" -m venv "$VENV"; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3-venv"
            rm -rf "$VENV"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$PY" -m venv "$VENV"
        else
            echo "[setup] ERROR: '$PY -m venv' failed; install python3-venv" >&2
            exit 1
        fi
    fi
fi

# Re-install only when requirements.txt or pyproject.toml changed.
STAMP="$VENV/.dendnotes-setup-stamp"
WANT_STAMP="$("$VENV/bin/python" -c 'import hashlib, sys
print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' \
    requirements.txt pyproject.toml)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT_STAMP" ] \
        || ! "$VENV/bin/python" -c "import dendnotes" >/dev/null 2>&1; then
    say "installing Python packages into $VENV (requirements.txt)"
    # (the grep drops pip's notes about index folders this machine lacks)
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    "$VENV/bin/python" -m pip install --quiet --no-deps -e . 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    echo "$WANT_STAMP" > "$STAMP"
else
    say "Python packages up to date in $VENV"
fi

# ---------------------------------------------------------------------------
# 3. MathJax 3 and the widget manager, served locally by the built book
# ---------------------------------------------------------------------------
NPM_HINT="Install Node.js and npm (Debian: 'sudo apt-get install npm';
elsewhere https://nodejs.org), then run 'bash scripts/setup.sh' again."

# npm_vendor PACKAGE@VERSION SUBDIR DEST: install the package with npm into
# _vendor/npm and copy its folder SUBDIR to _vendor/static/DEST.
npm_vendor() {
    local spec="$1" subdir="$2" dest="$ROOT/_vendor/static/$3"
    mkdir -p "$ROOT/_vendor/npm"
    npm install --prefix "$ROOT/_vendor/npm" --no-audit --no-fund \
        --loglevel=error "$spec" >/dev/null
    local src="$ROOT/_vendor/npm/node_modules/$subdir"
    if [ ! -d "$src" ]; then
        echo "[setup] ERROR: npm did not install $src" >&2
        exit 1
    fi
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    cp -r "$src" "$dest"
}

MJ_DIR="$ROOT/_vendor/static/mathjax"
MJ_STAMP="$MJ_DIR/.version-$MATHJAX_VERSION"
WIDGETS_DIR="$ROOT/_vendor/static/widgets"
WIDGETS_STAMP="$WIDGETS_DIR/.version-$WIDGETS_VERSION"
if [ -f "$MJ_STAMP" ] && [ -f "$MJ_DIR/tex-chtml.js" ]; then
    say "MathJax $MATHJAX_VERSION present in _vendor/static/mathjax"
elif command -v npm >/dev/null 2>&1; then
    say "installing MathJax $MATHJAX_VERSION from the npm registry"
    # The speech-rule engine (sre/) is only loaded when a reader turns on
    # MathJax's accessibility explorer from its menu; keep it so that works.
    npm_vendor "mathjax@$MATHJAX_VERSION" mathjax/es5 mathjax
    [ -f "$MJ_DIR/tex-chtml.js" ] || { echo "[setup] ERROR: no $MJ_DIR/tex-chtml.js" >&2; exit 1; }
    touch "$MJ_STAMP"
fi
if [ -f "$WIDGETS_STAMP" ] && [ -f "$WIDGETS_DIR/embed.js" ]; then
    say "widget manager $WIDGETS_VERSION present in _vendor/static/widgets"
elif command -v npm >/dev/null 2>&1; then
    # embed.js is the self-contained build (no require.js): it renders the
    # widget state saved in the executed notebooks; its fonts sit next to it.
    # Only ipywidgets' own widgets are used, so it never asks a CDN for more.
    say "installing @jupyter-widgets/html-manager $WIDGETS_VERSION from the npm registry"
    npm_vendor "@jupyter-widgets/html-manager@$WIDGETS_VERSION" @jupyter-widgets/html-manager/dist widgets
    rm -f "$WIDGETS_DIR"/*.map "$WIDGETS_DIR"/*amd.js
    [ -f "$WIDGETS_DIR/embed.js" ] || { echo "[setup] ERROR: no $WIDGETS_DIR/embed.js" >&2; exit 1; }
    touch "$WIDGETS_STAMP"
fi
if [ ! -f "$MJ_STAMP" ] || [ ! -f "$WIDGETS_STAMP" ]; then
    MSG="npm not found, so MathJax and the widget manager could not be installed:
the book's equations and widgets would not render.  $NPM_HINT"
    if [ "$NEED_MATHJAX" = 1 ]; then
        echo "[setup] ERROR: $MSG" >&2
        exit 1
    fi
    warn "$MSG"
    warn "(the tests do not need them; building the book does)"
fi

# ---------------------------------------------------------------------------
# Browser check: Chromium and Playwright's Python package
# ---------------------------------------------------------------------------
if [ "$WANT_BROWSER" = 1 ]; then
    CHROMIUM="${DENDNOTES_CHROMIUM:-/usr/bin/chromium}"
    if [ ! -x "$CHROMIUM" ]; then
        echo "[setup] ERROR: Chromium not found at $CHROMIUM (apt-get install chromium," \
             "or set DENDNOTES_CHROMIUM)" >&2
        exit 1
    fi
    "$VENV/bin/python" -c "import playwright" \
        || { echo "[setup] ERROR: playwright missing from $VENV" >&2; exit 1; }
    say "browser check ready: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
fi

say "done"
