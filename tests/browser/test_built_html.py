"""Static checks of the built HTML in _build/html (no browser needed, but the
book must be built, so this runs with the browser check).

Nothing a page loads may come from another host: MathJax is served from
_static/mathjax/, the widget manager from _static/widgets/.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup

from booktoc import toc_docnames

DOCNAMES = toc_docnames()
CHAPTERS = [d for d in DOCNAMES[1:] if not d.endswith("references")]
NOTEBOOK_CHAPTERS = [d for d in CHAPTERS if (Path(__file__).resolve().parents[2] / f"{d}.ipynb").is_file()]

# The repository and branch the launch buttons must use: _config.yml's (the one place they live).
_REPOSITORY = yaml.safe_load((Path(__file__).resolve().parents[2] / "_config.yml").read_text())["repository"]
REPO = _REPOSITORY["url"].removeprefix("https://github.com/").rstrip("/")
BRANCH = _REPOSITORY["branch"]
CDN_HOSTS = re.compile(
    r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|polyfill\.io|"
    r"cdn\.mathjax\.org|ajax\.googleapis\.com|code\.jquery\.com",
    re.I,
)
MATHJAX_URL = re.compile(r"(https?:)?//[^\s\"'<>]*mathjax", re.I)

# (tag, attribute) pairs through which a page loads something
LOADING = [
    ("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"),
    ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"),
    ("input", "src"), ("track", "src"),
]
LOADING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch",
                     "apple-touch-icon", "manifest"}


def html_files(html_dir: Path) -> list[Path]:
    return sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts)


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def is_remote(url: str) -> bool:
    url = url.strip()
    return url.startswith("//") or urlsplit(url).scheme in ("http", "https", "ftp", "ws", "wss")


def test_every_toc_page_was_built(html_dir):
    missing = [d for d in DOCNAMES if not (html_dir / f"{d}.html").is_file()]
    assert not missing, f"pages missing from _build/html: {missing}"
    assert (html_dir / "search.html").is_file() and (html_dir / "searchindex.js").is_file()


def test_no_page_loads_anything_remote(html_dir):
    remote = []
    for path in html_files(html_dir):
        doc = soup(path)
        for tag, attr in LOADING:
            for el in doc.find_all(tag):
                if el.get(attr) and is_remote(el[attr]):
                    remote.append(f"{path.relative_to(html_dir)}: <{tag} {attr}={el[attr]}>")
        for el in doc.find_all("link"):
            rels = set(el.get("rel") or [])
            if rels & LOADING_LINK_RELS and el.get("href") and is_remote(el["href"]):
                remote.append(f"{path.relative_to(html_dir)}: <link rel={rels} href={el['href']}>")
    assert not remote, "\n".join(remote)


def test_no_cdn_url_anywhere_in_html(html_dir):
    hits = []
    for path in html_files(html_dir):
        text = path.read_text(encoding="utf-8")
        for m in list(CDN_HOSTS.finditer(text)) + list(MATHJAX_URL.finditer(text)):
            hits.append(f"{path.relative_to(html_dir)}: {text[max(0, m.start() - 40): m.end() + 40]!r}")
    assert not hits, "\n".join(hits[:20])


def test_mathjax_served_locally(html_dir):
    mathjax = html_dir / "_static" / "mathjax"
    assert (mathjax / "tex-chtml.js").stat().st_size > 100_000
    fonts = list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) > 10, "MathJax's CHTML fonts were not copied"
    pages_with_math = 0
    for path in html_files(html_dir):
        doc = soup(path)
        if not doc.select(".math"):
            continue
        pages_with_math += 1
        srcs = [s.get("src", "") for s in doc.find_all("script") if "mathjax" in s.get("src", "").lower()]
        assert len(srcs) == 1, f"{path.name}: MathJax scripts {srcs}"
        local = (path.parent / srcs[0].split("?")[0]).resolve()
        assert local == (mathjax / "tex-chtml.js").resolve(), f"{path.name}: {srcs[0]}"
    assert pages_with_math >= len(CHAPTERS), "fewer pages with math than chapters"


@pytest.mark.parametrize("docname", NOTEBOOK_CHAPTERS)
def test_launch_and_download_buttons(html_dir, docname):
    doc = soup(html_dir / f"{docname}.html")
    hrefs = [a.get("href", "") for a in doc.find_all("a")]
    binder = f"https://mybinder.org/v2/gh/{REPO}/{BRANCH}?urlpath=lab/tree/{docname}.ipynb"
    colab = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{docname}.ipynb"
    assert binder in hrefs, f"no Binder button {binder}"
    assert colab in hrefs, f"no Colab button {colab}"
    downloads = [h for h in hrefs if h.endswith(f"_sources/{docname}.ipynb")]
    assert downloads, "no download button for the .ipynb (an .ipynb.txt link means html_sourcelink_suffix is set)"
    assert (html_dir / "_sources" / f"{docname}.ipynb").is_file()


@pytest.mark.parametrize("docname", NOTEBOOK_CHAPTERS)
def test_chapter_renders_exercises_and_references(html_dir, docname):
    doc = soup(html_dir / f"{docname}.html")
    assert len(doc.select("div.exercise")) >= 3, "fewer than 3 exercises rendered"
    for sol in doc.select("div.solution"):
        assert "dropdown" in sol.get("class", []), "a solution is not a collapsed dropdown"
    refs = doc.select("section#references aside.footnote")
    assert refs, "no footnote bibliography under ## References"


def test_reference_page_lists_bibliography(html_dir):
    doc = soup(html_dir / f"{DOCNAMES[-1]}.html")
    entries = doc.select("div.citation, dl.citation > dt, .citation")
    assert len(entries) >= 25, f"only {len(entries)} bibliography entries"
    assert doc.find("a", href=re.compile(r"^https://doi\.org/10\.7554/eLife\.22901")), "DOI links missing"


def test_widget_manager_served_locally(html_dir):
    """Pages with widgets load the local widget manager and carry the saved widget state."""
    embed = html_dir / "_static" / "widgets" / "embed.js"
    assert embed.stat().st_size > 500_000
    pages_with_widgets = 0
    for path in html_files(html_dir):
        doc = soup(path)
        if not doc.select('script[type="application/vnd.jupyter.widget-view+json"]'):
            continue
        pages_with_widgets += 1
        assert doc.select('script[type="application/vnd.jupyter.widget-state+json"]'), f"{path.name}: no widget state"
        srcs = [s["src"] for s in doc.find_all("script") if "embed" in s.get("src", "")]
        assert len(srcs) == 1, f"{path.name}: widget manager scripts {srcs}"
        assert (path.parent / srcs[0].split("?")[0]).resolve() == embed.resolve(), srcs
        assert not [s for s in doc.find_all("script") if "require" in s.get("src", "")], "require.js is not needed"
    assert pages_with_widgets >= 1, "no page has a widget"


def test_no_page_loads_mathjax_more_than_once(html_dir):
    for path in html_files(html_dir):
        srcs = [s["src"] for s in soup(path).find_all("script") if "mathjax/" in s.get("src", "")]
        assert len(srcs) <= 1, f"{path.name}: {srcs}"
