"""The package outside the checkout: a wheel carries the code and the result files the
chapters read, and imports from a temporary folder in a fresh virtual environment.

(The full check, every chapter run under nbval from a wheel in a new environment, is
scripts/test_fresh_install.sh: too slow for this suite; .ci/run and the GitHub workflow run it.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(out: Path) -> Path:
    """Build the wheel from a copy of the sources (no network: the backend is this environment's setuptools)."""
    source = out / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    for folder in ("dendnotes", "results", "benchmarks/results"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "tmp"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(source)],
        check=True, capture_output=True, text=True, cwd=out,
    )
    wheels = list(out.glob("dendnotes-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_contains_package_and_result_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"dendnotes/{p.name}" for p in (ROOT / "dendnotes").glob("*.py")}
    results = {f"dendnotes/_data/results/{p.name}" for p in (ROOT / "results").glob("*.json")}
    benchmarks = {f"dendnotes/_data/benchmarks/results/{p.name}" for p in (ROOT / "benchmarks" / "results").glob("*.json")}
    assert results and benchmarks
    missing = (modules | results | benchmarks) - names
    assert not missing, f"missing from the wheel: {sorted(missing)}"


def test_wheel_declares_what_the_notebooks_import(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("METADATA"))
    declared = {line.split(":", 1)[1].strip().split(">")[0].split("=")[0].split(";")[0].strip().lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    needed = {"torch", "numpy", "matplotlib", "tqdm", "scikit-learn", "mlxtend", "platformdirs", "pandas",
              "ipython", "ipywidgets", "nbformat"}
    assert needed <= declared, f"not declared in pyproject.toml: {sorted(needed - declared)}"


def test_wheel_imports_and_finds_results_outside_the_checkout(wheel, tmp_path):
    """A fresh venv with only the wheel (its dependencies come from this environment) finds the results."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # Dependencies (torch, ...) from this environment; a plain path, so its editable dendnotes is not seen.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = textwrap.dedent("""
        import json, dendnotes, dendnotes.widgets
        from pathlib import Path
        from dendnotes.results import REPO_ROOT, load_results
        assert Path(dendnotes.__file__).is_relative_to(Path(r"{site}")), dendnotes.__file__
        results = load_results(REPO_ROOT / "results")
        speed = json.loads((REPO_ROOT / "benchmarks" / "results" / "rule_speed.json").read_text())
        print(len(results), len(speed))
    """).format(site=site)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DENDNOTES_THREADS": "1"}
    run = subprocess.run([python, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    n_results = int(run.stdout.split()[0])
    assert n_results == len(list((ROOT / "results").glob("*.json")))


def test_binder_installs_cpu_torch_and_the_package():
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements
    assert any(line.strip() == "torch" for line in requirements.splitlines())
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install" in post_build.read_text() and " ." in post_build.read_text()
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
