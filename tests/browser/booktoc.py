"""The pages of the book, read from _toc.yml (shared by the browser tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def toc_docnames() -> list[str]:
    """Documents of _toc.yml in reading order (root first)."""
    data = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))

    def walk(node) -> list[str]:
        found = []
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                found += walk(node.get(key, []))
        elif isinstance(node, list):
            for item in node:
                found += walk(item)
        return found

    return [data["root"]] + walk(data)
