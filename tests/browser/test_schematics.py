"""Each chapter page shows its schematics (dendnotes.diagrams) as rendered images."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from booktoc import toc_docnames
from dendnotes.diagrams import SCHEMATICS

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = {int(Path(d).name[:2]): d for d in toc_docnames() if (ROOT / f"{d}.ipynb").is_file()}


@pytest.mark.parametrize("number", sorted(SCHEMATICS))
def test_chapter_shows_its_schematics(html_dir, number):
    page = html_dir / f"{CHAPTERS[number]}.html"
    doc = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    for function in SCHEMATICS[number]:
        cells = [c for c in doc.select("div.cell") if f"diagrams.{function.__name__}()" in c.get_text()]
        assert cells, f"{page.name}: no cell draws diagrams.{function.__name__}"
        images = cells[0].select("div.cell_output img")
        assert len(images) == 1, f"{page.name}: diagrams.{function.__name__} shows {len(images)} images"
        source = page.parent / images[0]["src"]
        assert source.is_file() and source.stat().st_size > 10_000, f"{page.name}: {source} missing or empty"
        caption = cells[0].find_next("p")
        assert caption is not None and f"dendnotes.diagrams.{function.__name__}" in caption.get_text()
