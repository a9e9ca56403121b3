"""Generate coursework from the book's notebooks: student versions and an instructor copy.

    python -m dendnotes.coursework student OUT_DIR [--book book] [--html]

writes ``OUT_DIR/student/*.ipynb`` (no solutions) and ``OUT_DIR/instructor/*.ipynb``
(the source notebooks, solutions included), plus ``OUT_DIR/README.md``. With ``--html``
it also builds the book from the student notebooks, for graded use: the site in
``OUT_DIR/html/_build/html`` has every page of the book but no solution (code exercises
show their stubs and check cells, without the errors an unfinished exercise raises).

How solutions are marked in the source notebooks (the one convention):

* A written solution is a ``{solution}`` directive in a Markdown cell, fenced with
  backticks or colons. Student versions drop the whole directive.
* A code solution is the run of cells between a Markdown cell holding
  ``{solution-start} <label>`` and one holding ``{solution-end}`` (sphinx-exercise's
  gated solutions). Student versions drop the two marker cells and any Markdown
  between them, and replace each code cell by a stub: the same function
  signatures and docstrings with ``...`` bodies that ``raise NotImplementedError``,
  tagged ``raises-exception``.
* A cell that calls ``check.<exercise>(...)`` (``dendnotes.check``) verifies the
  solution; student versions tag it ``raises-exception`` too, since it fails until
  the exercise is done. Code that needs the solution's results belongs inside the
  gated block or in a check cell.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from .files import check_writable_dir, write_text_atomically

START = re.compile(r"\{solution-start\}\s*(\S+)")
END = re.compile(r"\{solution-end\}")
CHECK_CALL = re.compile(r"\bcheck\.\w+\(")
FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|:{3,})\{solution\}")


def remove_solution_directives(markdown: str) -> str:
    """Drop every ``{solution}`` directive (and its body) from a Markdown string."""
    lines, kept, closing = markdown.split("\n"), [], None
    for line in lines:
        if closing is None:
            match = FENCE_OPEN.match(line)
            if match:
                closing = re.compile(rf"^\s*{re.escape(match.group(2)[0])}{{{len(match.group(2))},}}\s*$")
                continue
            kept.append(line)
        elif closing.match(line):
            closing = None
    if closing is not None:
        raise ValueError("a {solution} directive is never closed")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def stub_for(source: str, label: str) -> str:
    """A stub for a solution cell: imports, signatures and docstrings kept; bodies raise."""
    message = f'raise NotImplementedError("exercise {label}: your code here")'
    lines = source.split("\n")
    parts, other_code = [], False
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
            continue
        first = node.body[0] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        if first is None or first.lineno == node.lineno:
            other_code = True
            continue
        top = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        head = lines[top - 1 : first.lineno - 1]
        if ast.get_docstring(node) is not None:
            head += lines[first.lineno - 1 : first.end_lineno]
        indent = " " * first.col_offset
        parts.append("\n".join(head + [f"{indent}...  # your code here", f"{indent}{message}"]))
    if other_code:
        parts.append(f"# Exercise {label}: your code here\n...\n{message}")
    return "\n\n".join(parts)


def student_version(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every solution removed or stubbed (see the module docstring)."""
    student = copy.deepcopy(notebook)
    cells, label = [], None
    for cell in student.cells:
        text = cell.source
        if cell.cell_type == "markdown" and START.search(text):
            if label is not None:
                raise ValueError(f"solution-start for {START.search(text).group(1)} inside {label}'s solution")
            label = START.search(text).group(1)
            continue
        if cell.cell_type == "markdown" and END.search(text):
            if label is None:
                raise ValueError("solution-end without a solution-start")
            label = None
            continue
        if label is not None:
            if cell.cell_type == "code":
                cell.source = stub_for(text, label)
                tag(cell, "raises-exception")
                cells.append(cell)
            continue
        if cell.cell_type == "markdown":
            cell.source = remove_solution_directives(text)
            if not cell.source.strip():
                continue
        elif CHECK_CALL.search(text):
            tag(cell, "raises-exception")
        cells.append(cell)
    if label is not None:
        raise ValueError(f"solution-start {label} is never ended")
    student.cells = cells
    return student


def tag(cell: nbformat.NotebookNode, name: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if name not in tags:
        tags.append(name)


def solution_code(notebook: nbformat.NotebookNode) -> list[str]:
    """The source of every code cell inside a gated solution."""
    found, inside = [], False
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and START.search(cell.source):
            inside = True
        elif cell.cell_type == "markdown" and END.search(cell.source):
            inside = False
        elif inside and cell.cell_type == "code":
            found.append(cell.source)
    return found


README = """# Coursework generated from the dendnotes book

- `student/`: one notebook per chapter. Solutions are removed; code exercises are stubs
  that raise `NotImplementedError` until completed, and the `check.<exercise>(...)` cell
  after each one tells the student whether the answer is right and, if not, what is wrong.
- `instructor/`: the same notebooks with solutions (written ones as dropdowns).

Students need the `dendnotes` package (see the book's README). Run a student notebook
top to bottom: cells tagged `raises-exception` are the unfinished exercises.
"""


def check_output_folders(book_dir: Path, out_dir: Path) -> None:
    """Refuse an output that would overwrite the source notebooks; prove the output writable.

    Runs before anything is written, so a bad ``out_dir`` leaves nothing half-written."""
    targets = [out_dir, out_dir / "student", out_dir / "instructor"]
    if Path(book_dir).resolve() in {folder.resolve() for folder in targets[1:]}:
        raise ValueError(f"--book {book_dir} is where the coursework would be written: that would overwrite "
                         "the source notebooks; choose another output folder")
    for folder in targets:
        check_writable_dir(folder)


def write_coursework(book_dir: Path, out_dir: Path) -> list[Path]:
    """Write student and instructor notebooks for every chapter in ``book_dir``.

    Every notebook is converted before the first is written, and each file is written
    atomically, so an error leaves no partial coursework."""
    book_dir, out_dir = Path(book_dir), Path(out_dir)
    notebooks = sorted(book_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {book_dir}")
    files = {}
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        files[out_dir / "instructor" / path.name] = nbformat.writes(notebook)
        files[out_dir / "student" / path.name] = nbformat.writes(student_version(notebook))
    files[out_dir / "README.md"] = README
    check_output_folders(book_dir, out_dir)
    for target, text in files.items():
        write_text_atomically(target, text if text.endswith("\n") else text + "\n")
    return [out_dir / "student" / path.name for path in notebooks]


BOOK_PROJECT_FILES = ("_config.yml", "_toc.yml", "references.bib")


def prepare_html_source(book_dir: Path, student_dir: Path, source: Path) -> Path:
    """A Jupyter Book project in ``source``: the book's configuration, table of contents,
    bibliography and Markdown pages, with the student notebooks as its chapters."""
    root = Path(book_dir).resolve().parent
    missing = [name for name in BOOK_PROJECT_FILES if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found next to {book_dir}: --html needs the book's project")
    pages = source / Path(book_dir).name
    pages.mkdir(parents=True, exist_ok=True)
    for name in BOOK_PROJECT_FILES:
        shutil.copy2(root / name, source / name)
    for page in sorted(Path(book_dir).glob("*.md")):
        shutil.copy2(page, pages / page.name)
    for path in sorted(Path(student_dir).glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if "raises-exception" in cell.metadata.get("tags", []):
                tag(cell, "remove-output")
        nbformat.write(notebook, pages / path.name)
    vendor = root / "_vendor"
    if vendor.is_dir() and not (source / "_vendor").exists():
        (source / "_vendor").symlink_to(vendor, target_is_directory=True)
    return source


def build_html(source: Path, package_root: Path) -> Path:
    """Run ``jupyter-book build`` (warnings as errors) on ``source``; returns the HTML folder."""
    executable = Path(sys.executable).with_name("jupyter-book")
    command = [str(executable) if executable.exists() else "jupyter-book", "build", str(source), "-W", "-n",
               "--keep-going"]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(package_root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    if subprocess.run(command, env=environment).returncode != 0:
        raise RuntimeError(f"the solution-free book did not build: {' '.join(command)}")
    return source / "_build" / "html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dendnotes.coursework", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["student"], help="'student': student notebooks plus an instructor copy")
    parser.add_argument("out_dir", type=Path, help="folder to write the coursework into")
    parser.add_argument("--book", type=Path, default=Path("book"), help="folder of the source notebooks (default: book)")
    parser.add_argument("--html", action="store_true",
                        help="also build a solution-free HTML book from the student notebooks (runs every notebook)")
    args = parser.parse_args(argv)
    try:
        written = write_coursework(args.book, args.out_dir)
        if args.html:
            source = prepare_html_source(args.book, args.out_dir / "student", args.out_dir / "html")
            site = build_html(source, Path(args.book).resolve().parent)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} student notebooks to {args.out_dir / 'student'} and the instructor copy to "
          f"{args.out_dir / 'instructor'}")
    if args.html:
        print(f"built the solution-free book in {site} (open index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
