"""The GitHub Actions workflow that builds, checks and publishes the book: valid against the
GitHub workflow schema (offline, check-jsonschema's vendored copy) and wired as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflows_match_github_schema():
    files = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert files
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_workflow_builds_on_pull_requests_and_deploys_main_only():
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    steps = " ".join(str(step.get("run", "")) for step in flow["jobs"]["build"]["steps"])
    assert "scripts/setup.sh" in steps and "scripts/browser_test.sh" in steps
    upload = next(s for s in flow["jobs"]["build"]["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["uses"].endswith("@v3") and upload["with"]["path"] == "_build/html"
    assert "refs/heads/main" in upload["if"]
    deploy = flow["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"] and {"build", "test", "fresh-install"} <= set(deploy["needs"])
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@v4") for s in deploy["steps"])


def test_workflow_runs_the_test_command():
    steps = workflow()["jobs"]["test"]["steps"]
    assert any(str(s.get("run", "")).strip() == "bash scripts/test.sh" for s in steps)


def test_workflow_runs_the_fresh_install_check():
    steps = workflow()["jobs"]["fresh-install"]["steps"]
    assert any("scripts/test_fresh_install.sh" in str(s.get("run", "")) for s in steps)
    assert (ROOT / "scripts" / "test_fresh_install.sh").is_file()


def test_pages_setting_is_documented():
    """The one repository setting a maintainer must flip is named in the workflow and the README."""
    assert "Source: \"GitHub Actions\"" in WORKFLOW.read_text()
    assert "GitHub Actions" in (ROOT / "README.md").read_text()


def test_ci_runs_unit_tests_every_chapter_from_the_wheel_and_the_browser_check():
    """.ci/run: unit tests, then every chapter from the installed wheel (instead of from the
    checkout: the book build runs them there), then the build and the browser check."""
    ci = (ROOT / ".ci" / "run").read_text()
    steps = ("DENDNOTES_SKIP_NOTEBOOKS=1 bash scripts/test.sh", "bash scripts/test_fresh_install.sh",
             "bash scripts/browser_test.sh")
    assert all(step in ci for step in steps), steps
    order = [ci.index(step) for step in steps]
    assert order == sorted(order)
    assert "DENDNOTES_SKIP_NOTEBOOKS" in (ROOT / "scripts" / "test.sh").read_text()
