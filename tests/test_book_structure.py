"""Fast checks of the book's sources: table of contents, notebook conventions,
citations and the parts of _config.yml that keep the book offline.

These run in scripts/test.sh (no notebook is executed here).  The rules they
enforce are the contributor conventions in README.md.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"
CONFIG = ROOT / "_config.yml"
BIB = ROOT / "references.bib"

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def toc_entries(node: dict | list | None = None) -> list[str]:
    """All documents of _toc.yml in reading order (root first)."""
    if node is None:
        data = yaml.safe_load(TOC.read_text(encoding="utf-8"))
        return [data["root"]] + toc_entries(data)
    found: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            found.append(node["file"])
        for key in ("parts", "chapters", "sections", "subtrees", "entries"):
            if key in node:
                found += toc_entries(node[key])
    elif isinstance(node, list):
        for item in node:
            found += toc_entries(item)
    return found


def resolve(entry: str) -> Path | None:
    """The source file of a toc entry (an entry has no suffix)."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / (entry + suffix)
        if path.is_file():
            return path
    return None


def book_notebooks() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


NOTEBOOKS = book_notebooks()
NB_IDS = [nb.name for nb in NOTEBOOKS]


@lru_cache(maxsize=None)
def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})(.*)$")


def fence_depths(text: str) -> list[tuple[str, int]]:
    """Each line with the number of fenced blocks (code or directive) it is in.

    Fence lines themselves count as inside.  A fence with an info string
    ("```python", "```{exercise}") opens a block, also inside another block
    (MyST directives nest); a bare fence at least as long as the innermost
    open one closes it.
    """
    result, stack = [], []
    for line in text.splitlines():
        m = FENCE.match(line)
        if m:
            fence, rest = m.group(1), m.group(2).strip()
            if stack and not rest and fence[0] == stack[-1][0] and len(fence) >= len(stack[-1]):
                stack.pop()
                result.append((line, len(stack) + 1))
                continue
            if rest or not stack:
                stack.append(fence)
                result.append((line, len(stack)))
                continue
        result.append((line, len(stack)))
    return result


def outside_fences(text: str) -> str:
    """Markdown text with every fenced block removed."""
    return "\n".join(line for line, depth in fence_depths(text) if depth == 0)


def headings(text: str, level: int) -> list[str]:
    marks = "#" * level
    return [
        m.group(1).strip()
        for m in re.finditer(rf"^{marks}\s+(.+?)\s*#*\s*$", outside_fences(text), re.M)
    ]


def section(text: str, title: str) -> str:
    """The markdown from '## title' up to the next level-1 or level-2 heading."""
    taken, inside = [], False
    for line, depth in fence_depths(text):
        if depth == 0 and re.match(r"^#{1,2}\s", line):
            if inside:
                break
            inside = re.match(rf"^##\s+{re.escape(title)}\s*$", line) is not None
            continue
        if inside:
            taken.append(line)
    return "\n".join(taken)


DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{([\w:-]+)\}[ \t]*(.*)$", re.M)


def directives(text: str, name: str) -> list[tuple[str, str]]:
    """(argument, body up to the next directive) of each `{name}` directive."""
    found = []
    matches = list(DIRECTIVE.finditer(text))
    for i, m in enumerate(matches):
        if m.group(1) == name:
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            found.append((m.group(2).strip(), text[m.end():end]))
    return found


def option(body: str, name: str) -> str | None:
    m = re.search(rf"^\s*:{name}:\s*(.*)$", body, re.M)
    return m.group(1).strip() if m else None


CITE_ROLE = re.compile(r"\{(?:foot)?cite(?::[a-z]+)?\}`([^`]+)`")


def cited_keys(text: str) -> set[str]:
    keys = set()
    for m in CITE_ROLE.finditer(text):
        keys.update(k.strip() for k in m.group(1).split(",") if k.strip())
    return keys


def bib_entries() -> dict[str, str]:
    """key -> body of every entry in references.bib."""
    text = BIB.read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for m in re.finditer(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", text, re.M):
        if m.group(1).lower() in {"comment", "string", "preamble"}:
            continue
        key = m.group(2)
        assert key not in entries, f"duplicate key {key!r} in references.bib"
        # body: up to the next entry
        nxt = re.compile(r"^@\w+\s*\{", re.M).search(text, m.end())
        entries[key] = text[m.end(): nxt.start() if nxt else len(text)]
    return entries


def field(body: str, name: str) -> str | None:
    m = re.search(rf"^\s*{name}\s*=\s*\{{(.*)\}}\s*,?\s*$", body, re.M | re.I)
    return m.group(1).strip() if m else None


# ---------------------------------------------------------------------------
# table of contents
# ---------------------------------------------------------------------------


def test_toc_root_and_reference_page():
    entries = toc_entries()
    assert entries[0] == "book/intro"
    assert entries[-1] == "book/references", "the bibliography page comes last"
    assert len(entries) == len(set(entries)), "a page is listed twice in _toc.yml"


def test_every_toc_entry_exists():
    missing = [e for e in toc_entries() if resolve(e) is None]
    assert not missing, f"_toc.yml lists pages with no .ipynb/.md file: {missing}"


def test_toc_lists_at_least_one_notebook():
    notebooks = [e for e in toc_entries() if (ROOT / f"{e}.ipynb").is_file()]
    assert notebooks, "_toc.yml lists no notebook"


def test_every_notebook_is_in_toc():
    listed = {e for e in toc_entries()}
    unlisted = [nb.name for nb in NOTEBOOKS if f"book/{nb.stem}" not in listed]
    assert not unlisted, f"notebooks missing from _toc.yml: {unlisted}"


def test_toc_pages_live_in_book_folder():
    outside = [e for e in toc_entries() if not e.startswith("book/")]
    assert not outside, f"toc pages outside book/: {outside}"


def test_reference_page_lists_whole_bibliography():
    text = (BOOK / "references.md").read_text(encoding="utf-8")
    body = directives(text, "bibliography")
    assert body, "book/references.md needs a {bibliography} block"
    assert option(body[0][1], "all") is not None, "{bibliography} needs :all:"


# ---------------------------------------------------------------------------
# notebook conventions (one test per notebook and rule)
# ---------------------------------------------------------------------------

nb_param = pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)


@nb_param
def test_notebook_is_valid_nbformat(path):
    nbformat.validate(read_nb(path))


@nb_param
def test_notebook_committed_without_outputs(path):
    dirty = [
        i for i, c in enumerate(read_nb(path).cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; clear them "
        "(README: Contributing)"
    )


@nb_param
def test_notebook_kernel_is_python3(path):
    kernelspec = read_nb(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec {kernelspec}"
    assert kernelspec.get("language", "python") == "python"


@nb_param
def test_notebook_has_one_title(path):
    titles = headings(markdown(read_nb(path)), 1)
    assert len(titles) == 1, f"{path.name}: needs exactly one '# Title', found {titles}"
    first = read_nb(path).cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        f"{path.name}: the first cell must be markdown starting with the '# Title'"
    )


@nb_param
def test_notebook_has_assert_cell(path):
    code = [c.source for c in read_nb(path).cells if c.cell_type == "code"]
    assert any(re.search(r"^\s*assert\b", src, re.M) for src in code), (
        f"{path.name}: no code cell checks a claim with `assert`"
    )


@nb_param
def test_notebook_has_summary(path):
    assert "Summary" in headings(markdown(read_nb(path)), 2), f"{path.name}: no '## Summary'"


@nb_param
def test_notebook_has_three_labelled_exercises(path):
    text = markdown(read_nb(path))
    assert "Exercises" in headings(text, 2), f"{path.name}: no '## Exercises'"
    exercises = directives(section(text, "Exercises"), "exercise") + directives(
        section(text, "Exercises"), "exercise-start"
    )
    assert len(exercises) >= 3, (
        f"{path.name}: the Exercises section has {len(exercises)} {{exercise}} blocks, needs 3"
    )
    unlabelled = [arg for arg, body in exercises if not option(body, "label")]
    assert not unlabelled, f"{path.name}: exercises without :label: {unlabelled}"


INSTRUCTORS = BOOK / "instructors.md"
MARK = re.compile(r"^\*\*(★{1,3}) · (\d+(?:\.\d+)? (?:min|h))\*\*", re.M)


def instructors_marks() -> dict[str, tuple[str, str]]:
    """label -> (difficulty, time) from the table on the instructors' page."""
    rows = re.finditer(
        r"^\|\s*\d\s*\|\s*(ex-[\w-]+),[^|]*\|[^|]*\|\s*(★{1,3})\s*\|\s*([^|]+?)\s*\|",
        INSTRUCTORS.read_text(encoding="utf-8"),
        re.M,
    )
    return {m.group(1): (m.group(2), m.group(3)) for m in rows}


@nb_param
def test_every_exercise_carries_the_instructors_difficulty_and_time(path):
    table = instructors_marks()
    text = markdown(read_nb(path))
    for name in ("exercise", "exercise-start"):
        for title, body in directives(text, name):
            label = option(body, "label")
            assert label in table, f"{path.name}: {label!r} is missing from book/instructors.md"
            mark = MARK.search(body)
            assert mark, f"{path.name}: exercise {label!r} has no '**★★ · 30 min**' mark"
            assert mark.groups() == table[label], (
                f"{path.name}: {label!r} is marked {mark.groups()}, the instructors' page says {table[label]}"
            )


MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
# Symbols the notation page retired, per chapter (book/notation.md): a regex for each old
# reading, matched against the chapter's markdown maths only.
RETIRED_SYMBOLS = {
    "01_credit_assignment": {"P for the number of weights (K)": r"(?<![\\\w])P(?![\w])"},
    "02_backprop": {"U for the gradient matrix (G)": r"(?<![\\\w])U(?![\w])"},
    "03_feedback_alignment": {"B_l for DFA's feedback (D_l)": r"(?<![\\\w])B_l(?![\w+{])"},
    "04_equilibrium_propagation": {
        "t for the target (the one-hot y)": r"(?<![\\\w])t(?![\w])",
        "J for the loss (L)": r"(?<![\\\w])J(?![\w])",
    },
    "05_segregated_dendrites": {
        "Y for feedback (B)": r"(?<![\\\w])Y(?![\w])",
        "P^l for the scale factors (gamma)": r"(?<![\\\w])P\^",
        "L^l for the local losses (calligraphic L)": r"(?<![\\\w{])L\^",
        "E_E, E_I for reversal potentials (V_E, V_I)": r"(?<![\\\w])E_[EI]",
    },
    "06_bursts": {
        "Y for feedback (B)": r"(?<![\\\w])Y(?![\w])",
        "E, P for event trains and burst probability (calligraphic E, p)": r"(?<![\\\w{])[EP](?![\w])",
        "e_l, c_l for event rates and biases": r"(?<![\\\w])[ec]_[lL{]",
    },
    "07_comparison": {"B_l for DFA's feedback (D_l)": r"(?<![\\\w])B_l(?![\w+{])"},
}


@pytest.mark.parametrize("chapter", sorted(RETIRED_SYMBOLS))
def test_chapters_use_the_notation_page_symbols(chapter):
    text = markdown(read_nb(BOOK / f"{chapter}.ipynb"))
    maths = [m.group(0) for m in MATH.finditer(text)]
    for meaning, pattern in RETIRED_SYMBOLS[chapter].items():
        found = [m for m in maths if re.search(pattern, m)]
        assert not found, f"{chapter}: {meaning} is retired (book/notation.md), still in {found[:3]}"


def test_instructors_page_lists_only_existing_exercises():
    labels = {
        option(body, "label")
        for path in NOTEBOOKS
        for name in ("exercise", "exercise-start")
        for _, body in directives(markdown(read_nb(path)), name)
    }
    assert set(instructors_marks()) == labels


@nb_param
def test_notebook_solutions_are_dropdowns_of_known_exercises(path):
    text = markdown(read_nb(path))
    labels = {
        option(body, "label")
        for name in ("exercise", "exercise-start")
        for _, body in directives(text, name)
    }
    solutions = directives(text, "solution") + directives(text, "solution-start")
    for target, body in solutions:
        assert target in labels, f"{path.name}: solution for unknown exercise {target!r}"
        classes = (option(body, "class") or "").split()
        assert "dropdown" in classes, (
            f"{path.name}: solution to {target!r} needs ':class: dropdown'"
        )
    starts = len(directives(text, "solution-start"))
    ends = len(directives(text, "solution-end"))
    assert starts == ends, f"{path.name}: {starts} solution-start vs {ends} solution-end"


@nb_param
def test_notebook_ends_with_references(path):
    nb = read_nb(path)
    text = markdown(nb)
    titles = headings(text, 2)
    assert "References" in titles, f"{path.name}: no '## References'"
    assert titles[-1] == "References", f"{path.name}: '## References' must be the last section"
    assert directives(section(text, "References"), "footbibliography"), (
        f"{path.name}: '## References' must contain a {{footbibliography}} block"
    )
    assert cited_keys(text), f"{path.name}: cites nothing ({{footcite:t}}`key`)"


# ---------------------------------------------------------------------------
# citations
# ---------------------------------------------------------------------------


def all_sources() -> dict[str, str]:
    texts = {p.name: markdown(read_nb(p)) for p in NOTEBOOKS}
    # citations in code cells' comments do not render, but markdown in md pages does
    texts.update({p.name: p.read_text(encoding="utf-8") for p in sorted(BOOK.glob("*.md"))})
    return texts


def test_every_cited_key_is_in_bibliography():
    known = set(bib_entries())
    unknown = {
        name: sorted(cited_keys(text) - known)
        for name, text in all_sources().items()
        if cited_keys(text) - known
    }
    assert not unknown, f"citation keys missing from references.bib: {unknown}"


def test_pages_with_footcites_have_footbibliography():
    lacking = [
        name for name, text in all_sources().items()
        if re.search(r"\{footcite", text) and not directives(text, "footbibliography")
    ]
    assert not lacking, f"pages with footcite but no {{footbibliography}}: {lacking}"


def test_markdown_footnotes_are_defined():
    """[^x] needs a [^x]: definition (myst's own check is off, see _config.yml)."""
    undefined = {}
    for name, text in all_sources().items():
        text = outside_fences(text)
        refs = set(re.findall(r"\[\^([^\]\s]+)\](?!:)", text))
        defs = set(re.findall(r"^\[\^([^\]\s]+)\]:", text, re.M))
        if refs - defs:
            undefined[name] = sorted(refs - defs)
    assert not undefined, f"footnotes without definition: {undefined}"


def test_bibliography_entries_are_complete():
    entries = bib_entries()
    assert len(entries) >= 25
    for key, body in entries.items():
        assert re.fullmatch(r"[a-z]+\d{4}[a-z]+", key), f"{key}: key is not authorYEARword"
        for name in ("author", "title", "year"):
            assert field(body, name), f"{key}: no {name}"
        year = field(body, "year")
        assert year in key, f"{key}: year {year} does not match the key"
        doi = field(body, "doi")
        if doi is not None:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", doi), f"{key}: malformed DOI {doi!r}"
        else:
            assert field(body, "eprint"), f"{key}: give a DOI or an arXiv eprint"


def test_required_papers_are_in_bibliography():
    """The papers the book is built around (checked by DOI or arXiv id)."""
    ids = {}
    for key, body in bib_entries().items():
        for name in ("doi", "eprint"):
            if field(body, name):
                ids[field(body, name).lower()] = key
    required = [
        "10.1109/jrproc.1961.287775",  # Minsky 1961
        "10.1038/323533a0",  # Rumelhart, Hinton & Williams 1986
        "10.1038/337129a0",  # Crick 1989
        "10.1111/j.1551-6708.1987.tb00862.x",  # Grossberg 1987
        "10.1007/bf00992696",  # Williams 1992
        "10.1109/72.105429",  # Jabri & Flower 1992
        "10.1103/physrevlett.97.048104",  # Fiete & Seung 2006
        "10.1162/089976605774320539",  # Werfel, Xie & Seung 2005
        "10.1038/ncomms13276",  # Lillicrap et al. 2016
        "1609.01596",  # Nokland 2016
        "1510.05067",  # Liao, Leibo & Poggio 2016
        "1904.05391",  # Akrout et al. 2019
        "10.3389/fncom.2017.00024",  # Scellier & Bengio 2017
        "1905.13633",  # Ernoult et al. 2019
        "10.3389/fnins.2021.633674",  # Laborieux et al. 2021
        "10.7554/elife.22901",  # Guerguiev et al. 2017
        "1810.11393",  # Sacramento et al. 2018
        "10.1038/s41593-021-00857-x",  # Payeur et al. 2021
        "10.1073/pnas.1720995115",  # Naud & Sprekeler 2018
        "10.1038/18686",  # Larkum et al. 1999
        "10.1038/s41583-020-0277-3",  # Lillicrap et al. 2020
        "10.1038/s41593-019-0520-2",  # Richards et al. 2019
        "10.1016/j.tics.2018.12.005",  # Whittington & Bogacz 2019
        "10.1109/5.726791",  # LeCun et al. 1998
        "1708.07747",  # Xiao et al. 2017
        "2108.13446",  # Sanfiz & Akrout 2021
    ]
    missing = [r for r in required if r not in ids]
    assert not missing, f"required papers missing from references.bib: {missing}"


# ---------------------------------------------------------------------------
# configuration that keeps the built book offline and correct
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def test_config_executes_every_notebook_with_cell_timeout():
    execute = config()["execute"]
    assert execute["execute_notebooks"] == "force"
    assert 0 < execute["timeout"] <= 600
    assert config()["only_build_toc_files"] is True
    excluded = set(config()["exclude_patterns"])
    assert {".venv", "_build", "tests", "benchmarks", "node_modules", "README.md"} <= excluded


def test_config_mathjax_is_local():
    sphinx = config()["sphinx"]["config"]
    path = sphinx["mathjax_path"]
    assert "://" not in path and not path.startswith("//"), f"MathJax from the network: {path}"
    # scripts/setup.sh copies MathJax's es5/ folder to _vendor/static/mathjax/
    assert path == "mathjax/tex-chtml.js"
    assert "_vendor/static" in sphinx["html_static_path"]
    assert "_vendor/static/mathjax" in (ROOT / "scripts" / "setup.sh").read_text()


def test_config_widget_javascript_is_local():
    """The widget manager comes from _static/widgets/ (scripts/setup.sh), never a CDN; no require.js."""
    scripts = config()["sphinx"]["config"]["nb_ipywidgets_js"]
    assert list(scripts) == ["widgets-typeset.js", "widgets/embed.js"], scripts
    assert (ROOT / "style" / "widgets-typeset.js").is_file()
    assert "_vendor/static/widgets" in (ROOT / "scripts" / "setup.sh").read_text()
    assert "@jupyter-widgets/html-manager" in (ROOT / "scripts" / "setup.sh").read_text()


def test_config_markdown_outputs_render_as_myst():
    """Markdown outputs (IPython.display.Markdown) are parsed as MyST: tables and math render."""
    assert config()["sphinx"]["config"]["nb_render_markdown_format"] == "myst"


def test_config_download_gives_ipynb():
    assert config()["sphinx"]["config"]["html_sourcelink_suffix"] == ""


def test_config_has_no_root_static_folder():
    """Jupyter Book would load every .js under every static path (all of MathJax) if _static/ existed."""
    assert not (ROOT / "_static").exists()


def test_config_bibliography_and_exercises_enabled():
    assert config()["bibtex_bibfiles"] == ["references.bib"]
    extensions = config()["sphinx"]["config"]["extensions"]
    assert {"sphinxcontrib.bibtex", "sphinx_exercise", "myst_nb", "sphinx_book_theme"} <= set(extensions)
    assert "sphinx_thebe" not in extensions  # it loads thebe from a CDN


def test_config_launch_buttons_point_at_repository():
    cfg = config()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", cfg["repository"]["url"])
    assert cfg["repository"]["branch"]
    assert cfg["repository"]["path_to_book"] == ""  # so links read book/<chapter>.ipynb
    assert cfg["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


# ---------------------------------------------------------------------------
# launching a chapter elsewhere: the repository lives in _config.yml only
# ---------------------------------------------------------------------------


def launch_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch", ROOT / "scripts" / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@nb_param
def test_notebook_starts_with_install_cell(path):
    """Every chapter's first code cell is the install cell made from _config.yml's repository."""
    launch = launch_module()
    if not path.name[:2].isdigit():
        pytest.skip("not a chapter")
    first = launch.first_code_cell(read_nb(path))
    url, branch = launch.repository()
    assert first is not None and first.get("id") == launch.INSTALL_CELL_ID, (
        f"{path.name}: the first code cell is not the install cell; run python scripts/launch.py")
    assert first["source"] == launch.install_source(url, branch), (
        f"{path.name}: install cell is stale; run python scripts/launch.py")


def test_install_cell_is_guarded():
    launch = launch_module()
    source = launch.install_source("https://github.com/o/r", "b")
    assert 'if importlib.util.find_spec("dendnotes") is None:' in source
    assert "%pip install" in source and "https://github.com/o/r/archive/refs/heads/b.zip" in source


def test_readme_and_binder_use_the_configured_repository():
    launch = launch_module()
    url, branch = launch.repository()
    readme = (ROOT / "README.md").read_text()
    assert f"git clone {url}" in readme, "README's clone command is not the _config.yml repository"
    assert f"{url}/archive/refs/heads/{branch}.zip" in readme, "README's pip install line is stale"
