"""Coursework generation: student notebooks keep no solutions, and they still run."""

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dendnotes.coursework import (
    main,
    remove_solution_directives,
    solution_code,
    student_version,
    stub_for,
    write_coursework,
)

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))


def test_solution_directives_are_removed_with_either_fence():
    text = "\n".join([
        "intro", "```{exercise} E", ":label: ex-a", "do it", "```", "",
        "````{solution} ex-a", ":class: dropdown", "secret one", "```python", "secret code", "```", "````", "",
        ":::{solution} ex-a", "secret two", ":::", "", "outro",
    ])
    result = remove_solution_directives(text)
    assert "secret" not in result and "{solution}" not in result
    assert result.startswith("intro") and result.endswith("outro") and "do it" in result
    with pytest.raises(ValueError, match="never closed"):
        remove_solution_directives("```{solution} ex-a\nopen")


def test_stub_keeps_signatures_and_docstrings_and_raises():
    source = 'import math\n\n\ndef area(r,\n         scale=1):\n    """Area of a disc."""\n    return math.pi * r**2\n\n\nprint(area(2))\n'
    stub = stub_for(source, "ex-area")
    assert "def area(r,\n         scale=1):" in stub and '"""Area of a disc."""' in stub
    assert "math.pi" not in stub and "print(area" not in stub and "..." in stub
    namespace = {}
    with pytest.raises(NotImplementedError, match="ex-area"):
        exec(stub, namespace)  # the free-standing statements are replaced by a raising placeholder
    exec(stub.split("# Exercise")[0], namespace)
    with pytest.raises(NotImplementedError, match="ex-area"):
        namespace["area"](1)


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s) for s in cells]
    return nb


def test_student_version_on_a_small_notebook():
    nb = notebook(
        "import x",
        "md:```{exercise} E\n:label: ex-e\n```\n\n```{solution} ex-e\nwritten secret\n```",
        "md:```{solution-start} ex-e\n:class: dropdown\n```",
        "def f(a):\n    return a + 42",
        "md:explaining the secret",
        "md:```{solution-end}\n```",
        "check.f_check(f)",
        "print('unrelated')",
    )
    student = student_version(nb)
    sources = [c.source for c in student.cells]
    assert len(sources) == 5
    assert "written secret" not in "".join(sources) and "42" not in "".join(sources)
    assert "explaining the secret" not in "".join(sources)
    assert student.cells[2].metadata["tags"] == ["raises-exception"] and "def f(a):" in sources[2]
    assert student.cells[3].metadata["tags"] == ["raises-exception"]
    assert "tags" not in student.cells[4].metadata
    assert solution_code(nb) == ["def f(a):\n    return a + 42"]
    assert nb.cells[3].source.endswith("42"), "the source notebook is left alone"


@pytest.mark.parametrize(
    "cells, message",
    [
        (["md:```{solution-start} ex-a\n```", "x = 1"], "never ended"),
        (["md:```{solution-end}\n```"], "without a solution-start"),
        (["md:```{solution-start} ex-a\n```", "md:```{solution-start} ex-b\n```"], "inside ex-a"),
    ],
)
def test_unbalanced_markers_are_errors(cells, message):
    with pytest.raises(ValueError, match=message):
        student_version(notebook(*cells))


def significant_lines(source: str) -> list[str]:
    """Lines of solution code that would give the answer away (not signatures or docstrings)."""
    tree = ast.parse(source)
    keep = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            for statement in body:
                keep.update(range(statement.lineno, statement.end_lineno + 1))
    lines = source.split("\n")
    return [lines[i - 1].strip() for i in sorted(keep) if len(lines[i - 1].strip()) > 12]


@pytest.fixture(scope="module")
def coursework(tmp_path_factory):
    out = tmp_path_factory.mktemp("coursework")
    assert main(["student", str(out), "--book", str(BOOK)]) == 0
    return out


def test_every_chapter_gets_both_versions(coursework):
    assert sorted(p.name for p in (coursework / "student").glob("*.ipynb")) == [p.name for p in CHAPTERS]
    for path in CHAPTERS:
        assert nbformat.read(coursework / "instructor" / path.name, as_version=4) == nbformat.read(path, as_version=4)
    assert (coursework / "README.md").exists()


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_solution_leaks_into_student_notebooks(coursework, path):
    source = nbformat.read(path, as_version=4)
    student_text = (coursework / "student" / path.name).read_text()
    assert "{solution" not in student_text
    for code in solution_code(source):
        for line in significant_lines(code):
            assert line not in student_text, f"solution line leaked: {line!r}"
    for cell in nbformat.read(coursework / "student" / path.name, as_version=4).cells:
        if cell.cell_type == "code" and "NotImplementedError" in cell.source:
            assert "raises-exception" in cell.metadata.get("tags", [])


def test_student_notebooks_run_under_nbval(coursework):
    # Two pytest processes, every other chapter each (one single-threaded kernel each: two cores).
    notebooks = sorted((coursework / "student").glob("*.ipynb"))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", *map(str, half)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=coursework,
        )
        for half in (notebooks[0::2], notebooks[1::2])
    ]
    outputs = [run.communicate(timeout=1500)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]


def test_cli_errors(tmp_path, capsys):
    assert main(["student", str(tmp_path / "out"), "--book", str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err
    assert write_coursework(BOOK, tmp_path / "ok")


def test_html_source_has_the_book_with_student_notebooks_only(tmp_path):
    from dendnotes.coursework import prepare_html_source

    write_coursework(BOOK, tmp_path)
    source = prepare_html_source(BOOK, tmp_path / "student", tmp_path / "html")
    for name in ("_config.yml", "_toc.yml", "references.bib", "book/intro.md", "book/notation.md"):
        assert (source / name).is_file(), name
    chapters = sorted((source / "book").glob("*.ipynb"))
    assert [p.name for p in chapters] == [p.name for p in CHAPTERS]
    for path in chapters:
        page, student = (nbformat.read(p, as_version=4) for p in (path, tmp_path / "student" / path.name))
        assert [c.source for c in page.cells] == [c.source for c in student.cells], path.name
        assert "{solution}" not in path.read_text(), path.name
        for cell in page.cells:
            tags = cell.metadata.get("tags", [])
            assert ("remove-output" in tags) == ("raises-exception" in tags), path.name


def test_html_needs_the_book_project(tmp_path):
    from dendnotes.coursework import prepare_html_source

    (tmp_path / "book").mkdir()
    with pytest.raises(FileNotFoundError, match="--html needs the book's project"):
        prepare_html_source(tmp_path / "book", tmp_path, tmp_path / "out")
