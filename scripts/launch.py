"""The book's repository URL and branch, from _config.yml (the one place they live),
and the install cell every chapter starts with.

    python scripts/launch.py            # put/refresh the install cell in every chapter
    python scripts/launch.py --check    # exit 1 if a chapter's install cell is missing or stale

The launch buttons read the same `repository:` entry of _config.yml (Jupyter Book does
that); tests/test_book_structure.py checks that the chapters' install cells and the
README agree with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL_CELL_ID = "install-dendnotes"


def repository(config: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) of the book's GitHub repository, from the `repository:` entry of _config.yml."""
    repo = yaml.safe_load(config.read_text())["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


def install_source(url: str, branch: str) -> str:
    """The install cell: pip-installs the package from the repository's branch where it is missing."""
    return (
        "# Colab, Binder or a bare Jupyter: install the dendnotes package when it is missing.\n"
        "# (A no-op where it is installed, e.g. a checkout set up with scripts/setup.sh.)\n"
        "# Nothing already installed is upgraded, so no restart is needed; if pip ever does\n"
        "# upgrade a package this session has imported, restart the session and run again.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("dendnotes") is None:\n'
        f'    %pip install --quiet "dendnotes @ {url}/archive/refs/heads/{branch}.zip"'
    )


def install_cell(url: str, branch: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": INSTALL_CELL_ID,
        # Folded in the online book, under a label that says what it is.
        "metadata": {
            "tags": ["hide-input"],
            "mystnb": {"code_prompt_show": "Show the install cell (Colab, Binder)",
                       "code_prompt_hide": "Hide the install cell"},
        },
        "outputs": [],
        "source": install_source(url, branch).splitlines(keepends=True),
    }


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def first_code_cell(notebook: dict) -> dict | None:
    return next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)


def with_install_cell(notebook: dict, url: str, branch: str) -> dict:
    """The notebook with the install cell as its first code cell (replaced if already there)."""
    cells = [c for c in notebook["cells"] if c.get("id") != INSTALL_CELL_ID]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    cells.insert(first_code, install_cell(url, branch))
    return {**notebook, "cells": cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, change nothing")
    args = parser.parse_args(argv)
    url, branch = repository()
    stale = []
    for path in chapters():
        notebook = json.loads(path.read_text())
        updated = with_install_cell(notebook, url, branch)
        if updated == notebook:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(json.dumps(updated, indent=1, ensure_ascii=False) + "\n")
    verb = "stale or missing in" if args.check else "updated"
    print(f"install cell ({url} @ {branch}) {verb}: {', '.join(stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
