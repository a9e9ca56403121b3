"""Fixtures for the browser check of the built book (issue 9).

These tests need the HTML book in _build/html and Chromium, so they run only
from scripts/browser_test.sh, which builds the book first and sets
DENDNOTES_BROWSER_TEST=1.  Without that variable (e.g. a plain ``pytest
tests``) this folder is not collected at all.

The book is served by a local HTTP server on 127.0.0.1 (ephemeral port) and
opened with headless Chromium through Playwright; every request that would
leave 127.0.0.1 is blocked and recorded.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"

if os.environ.get("DENDNOTES_BROWSER_TEST") != "1":
    collect_ignore_glob = ["*.py"]

CHROMIUM = os.environ.get("DENDNOTES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
VIEWPORT = {"width": 1280, "height": 900}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture(scope="session")
def html_dir() -> Path:
    if not (HTML / "index.html").is_file():
        pytest.fail(
            f"{HTML / 'index.html'} is missing: run 'bash scripts/browser_test.sh', "
            "which builds the book before checking it"
        )
    return HTML


@pytest.fixture(scope="session")
def base_url(html_dir):
    """URL of the book served from 127.0.0.1 on a free port."""
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class NetworkLog:
    """Requests the pages tried to make outside 127.0.0.1 (all blocked)."""

    def __init__(self, base_url: str):
        self.origin = urlsplit(base_url).netloc
        self.blocked: list[str] = []

    def route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")


@pytest.fixture(scope="session")
def network_log(base_url) -> NetworkLog:
    return NetworkLog(base_url)


@pytest.fixture(scope="session")
def browser_context(base_url, network_log):
    """A headless Chromium with a fresh profile, its network fenced to 127.0.0.1."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="dendnotes-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=VIEWPORT,
                service_workers="block",
            )
            context.set_default_timeout(30_000)
            context.route("**/*", network_log.route)
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
