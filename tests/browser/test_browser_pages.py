"""Open every page of the built book in headless Chromium and check what a
reader would see: no console errors, every image loaded, every formula
typeset by the local MathJax, working chapter navigation and search, and no
request to anything but 127.0.0.1.  A screenshot of each page's first screen
goes to _build/screenshots/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from booktoc import ROOT, toc_docnames

DOCNAMES = toc_docnames()
# Chapters are the notebooks; Markdown pages (notation, instructors, references) have no code figures.
CHAPTERS = [d for d in DOCNAMES[1:] if (ROOT / f"{d}.ipynb").is_file()]


def built_pages_containing(marker: str) -> list[str]:
    """Pages of the built book whose HTML contains ``marker`` (read when the tests are collected)."""
    html = Path(__file__).resolve().parents[2] / "_build" / "html"
    return [d for d in DOCNAMES if (html / f"{d}.html").is_file() and marker in (html / f"{d}.html").read_text()]


# Pages with a precomputed explorer (its class is in the saved widget state).
EXPLORER_PAGES = built_pages_containing('"dendnotes-explorer"')

# Runs in the page once it has loaded: waits for MathJax's first typeset and
# for every image, then reports what is on the page.
INSPECT_JS = r"""
async () => {
  const mj = window.MathJax;
  const hasMathJax = !!(mj && mj.startup && mj.startup.promise);
  if (hasMathJax) { await mj.startup.promise; }
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done);
    setTimeout(done, 10000);
  })));
  const article = document.querySelector('article.bd-article') || document.body;
  // Widgets: the local widget manager (embed.js) renders each saved view into a
  // div.widget-subarea just before its <script> tag; wait until all are drawn.
  const views = article.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  const drawn = () => Array.from(views).every(s => {
    const area = s.previousElementSibling;
    return area && area.classList.contains('widget-subarea') && area.childElementCount > 0;
  });
  for (let waited = 0; views.length && !drawn() && waited < 15000; waited += 100) {
    await new Promise(done => setTimeout(done, 100));
  }
  const hidden = el => !!el.closest('.toggle-hidden, details:not([open]), .tag_hide-output');
  const emptyOutputs = Array.from(article.querySelectorAll('div.cell_output'))
    .filter(el => !hidden(el))
    .filter(el => el.getBoundingClientRect().height < 2 ||
                  !(el.innerText.trim() || el.querySelector('img, svg, table, canvas, .widget-subarea *')))
    .map(el => (el.closest('.cell') || el).id || el.outerHTML.slice(0, 120));
  const math = Array.from(article.querySelectorAll('.math'));
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight')
       .forEach(el => el.remove());
  const h1 = article.querySelector('h1');
  return {
    title: h1 ? h1.textContent.replace(/#$/, '').trim() : document.title,
    hasMathJax: hasMathJax,
    mathCount: math.length,
    untypeset: math.filter(el => !el.querySelector('mjx-container'))
                   .map(el => el.textContent.slice(0, 80)),
    containers: article.querySelectorAll('mjx-container').length,
    mathErrors: Array.from(article.querySelectorAll('mjx-merror, [data-mjx-error]'))
                     .map(el => el.getAttribute('data-mjx-error') || el.textContent),
    text: clone.innerText,
    widgetViews: views.length,
    widgetsDrawn: drawn(),
    emptyOutputs: emptyOutputs,
    explorers: article.querySelectorAll('.dendnotes-explorer').length,
    kernelControls: article.querySelectorAll('.widget-interact').length,
    images: imgs.map(img => ({src: img.currentSrc || img.src, complete: img.complete,
                              width: img.naturalWidth})),
    solutions: Array.from(article.querySelectorAll('div.solution')).map(el => ({
      folded: el.classList.contains('toggle-hidden'),
      shown: Array.from(el.children).filter(c => !c.classList.contains('admonition-title'))
                  .reduce((h, c) => h + c.getBoundingClientRect().height, 0),
    })),
  };
}
"""

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\frac\b")
# Markdown that was not rendered: a table rule, bold markers, a heading marker.
RAW_MARKDOWN = re.compile(r"\|\s*:?-{3,}:?\s*\||\*\*[^*\s][^*\n]*\*\*|^#{1,6} \w", re.M)
WIDGET_JUNK = re.compile(r"HBox\(children|FloatProgress\(|IntProgress\(|Loading widget|widget-view\+json")


@dataclass
class PageReport:
    docname: str
    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def page_url(base_url: str, docname: str) -> str:
    return f"{base_url}{docname}.html"


def docname_of(base_url: str, url: str) -> str:
    path = urlsplit(url).path
    base = urlsplit(base_url).path
    return path[len(base):].removesuffix(".html")


def open_page(context, network_log, url: str, report: PageReport):
    page = context.new_page()
    page.on("console", lambda msg: report.console_errors.append(
        f"{msg.text} @ {msg.location.get('url', '')}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
    page.on("response", lambda resp: report.bad_responses.append(
        f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    before = len(network_log.blocked)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    report.info = page.evaluate(INSPECT_JS)
    report.title = report.info["title"]
    report.blocked = network_log.blocked[before:]
    return page


@pytest.fixture(scope="session")
def reports(browser_context, base_url, network_log, screenshot_dir) -> dict[str, PageReport]:
    """Visit every page of _toc.yml once; screenshot its first screen."""
    found = {}
    for docname in DOCNAMES:
        report = PageReport(docname, page_url(base_url, docname))
        page = open_page(browser_context, network_log, report.url, report)
        page.screenshot(path=str(screenshot_dir / (docname.replace("/", "__") + ".png")))
        page.close()
        found[docname] = report
    return found


page_param = pytest.mark.parametrize("docname", DOCNAMES)


@page_param
def test_page_has_no_console_errors(reports, docname):
    r = reports[docname]
    assert not r.console_errors, r.console_errors
    assert not r.page_errors, r.page_errors


@page_param
def test_page_loads_only_from_local_server(reports, docname):
    r = reports[docname]
    assert not r.blocked, f"requests leaving 127.0.0.1 (blocked): {r.blocked}"
    assert not r.bad_responses, f"failed requests: {r.bad_responses}"


@page_param
def test_page_images_loaded(reports, docname):
    broken = [i["src"] for i in reports[docname].info["images"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_has_figures(reports, docname):
    """Each chapter shows at least one figure made by its code (a matplotlib PNG)."""
    figures = [i for i in reports[docname].info["images"] if "/_images/" in i["src"]]
    assert figures, f"{docname}: no figure from a code cell"


@page_param
def test_page_math_typeset(reports, docname):
    info = reports[docname].info
    if info["mathCount"]:
        assert info["hasMathJax"], "page has math but MathJax did not start"
    assert not info["untypeset"], f"math left untypeset: {info['untypeset']}"
    assert info["containers"] >= info["mathCount"]
    assert not info["mathErrors"], f"MathJax errors: {info['mathErrors']}"
    raw = sorted(set(RAW_TEX.findall(info["text"])))
    assert not raw, f"raw TeX left in the page text: {raw}"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_has_math(reports, docname):
    assert reports[docname].info["mathCount"] > 0, f"{docname}: no equation at all?"


@page_param
def test_page_has_no_widget_junk(reports, docname):
    junk = WIDGET_JUNK.findall(reports[docname].info["text"])
    assert not junk, f"widget placeholders in the page text: {junk}"


@page_param
def test_page_has_no_raw_markdown(reports, docname):
    """Markdown outputs (tables, bold) render as HTML, not as their source text."""
    raw = RAW_MARKDOWN.findall(reports[docname].info["text"])
    assert not raw, f"markdown left as text: {raw[:5]}"


@page_param
def test_page_has_no_empty_output(reports, docname):
    empty = reports[docname].info["emptyOutputs"]
    assert not empty, f"output areas that show nothing: {empty}"


@page_param
def test_page_widgets_drawn(reports, docname):
    info = reports[docname].info
    assert info["widgetsDrawn"], f"{info['widgetViews']} widget views, not all drawn by the local widget manager"


def test_some_chapter_has_an_explorer(reports):
    assert EXPLORER_PAGES, "no precomputed explorer on any chapter"
    assert EXPLORER_PAGES == [d for d in DOCNAMES if reports[d].info["explorers"]]


# What an explorer shows: its visible images and visible text, read in the page.
SHOWN_JS = r"""
el => Array.from(el.querySelectorAll('img, .widget-html-content'))
  .filter(x => x.offsetParent !== null && x.getBoundingClientRect().height > 0)
  .map(x => x.tagName === 'IMG' ? 'img:' + x.src.length + ':' + x.naturalWidth + ':' + x.src.slice(-40)
                                : 'text:' + x.innerText)
  .join('\n')
"""


def move_control(control):
    """Move a control one step: a slider's handle by one key press (right, or left at the
    end), else click a button that is not the selected one."""
    handle = control.locator(".noUi-handle")
    if handle.count():
        handle = handle.first
        handle.focus()
        before = handle.get_attribute("aria-valuenow")
        handle.press("ArrowRight")
        if handle.get_attribute("aria-valuenow") == before:
            handle.press("ArrowLeft")
        return
    control.locator("button:not(.mod-active)").first.click()


@pytest.mark.parametrize("docname", EXPLORER_PAGES)
def test_explorer_controls_change_what_is_shown(browser_context, base_url, network_log, docname):
    """Each control of each precomputed explorer switches the shown figure or number, without Python."""
    report = PageReport("explorer", base_url)
    page = open_page(browser_context, network_log, page_url(base_url, docname), report)
    explorers = page.locator(".dendnotes-explorer")
    moved = 0
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        controls = explorer.locator(":scope > .widget-slider, :scope > .widget-toggle-buttons")
        assert controls.count() >= 1, f"explorer {i} has no control"
        for j in range(controls.count()):
            before = explorer.evaluate(SHOWN_JS)
            assert before, f"explorer {i} shows nothing"
            move_control(controls.nth(j))
            page.wait_for_function(f"([el, b]) => ({SHOWN_JS})(el) !== b", arg=[explorer.element_handle(), before],
                                   timeout=5000)
            moved += 1
    page.close()
    assert moved
    assert not report.console_errors and not report.page_errors, report.console_errors + report.page_errors
    assert not report.blocked, report.blocked


@page_param
def test_no_control_needs_a_kernel(reports, docname):
    """Every control works online: none is made with ipywidgets.interactive, which needs Python
    (use dendnotes.widgets.precomputed_explorer)."""
    assert reports[docname].info["kernelControls"] == 0


@pytest.mark.parametrize("docname", CHAPTERS)
def test_solutions_start_folded(reports, docname):
    solutions = reports[docname].info["solutions"]
    assert solutions, f"{docname}: no solution blocks"
    unfolded = [i for i, s in enumerate(solutions) if not s["folded"] or s["shown"] > 0]
    assert not unfolded, f"solutions shown before a click: {unfolded}"


def test_solution_unfolds_on_click(browser_context, base_url, network_log, reports):
    docname = next(d for d in CHAPTERS if reports[d].info["solutions"])
    report = PageReport("solution", base_url)
    page = open_page(browser_context, network_log, page_url(base_url, docname), report)
    solution = page.locator("div.solution").first
    solution.locator("button.toggle-button").click()
    page.wait_for_function(
        "() => !document.querySelector('div.solution').classList.contains('toggle-hidden')")
    body = solution.locator("section").first
    assert body.is_visible() and body.bounding_box()["height"] > 0
    page.close()
    assert not report.console_errors and not report.page_errors


def test_next_links_walk_through_every_page_in_toc_order(browser_context, base_url, network_log):
    report = PageReport("navigation", base_url)
    page = open_page(browser_context, network_log, base_url + "index.html", report)
    visited = [docname_of(base_url, page.url)]
    for _ in range(len(DOCNAMES) + 2):
        nxt = page.locator("a.right-next")
        if nxt.count() == 0:
            break
        nxt.first.click()
        page.wait_for_load_state("load")
        visited.append(docname_of(base_url, page.url))
    page.close()
    assert visited == DOCNAMES
    assert not report.console_errors and not report.blocked


def test_sidebar_links_to_every_page(browser_context, base_url, network_log):
    report = PageReport("sidebar", base_url)
    page = open_page(browser_context, network_log, page_url(base_url, DOCNAMES[-1]), report)
    hrefs = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "els => els.map(a => a.href)")
    page.close()
    linked = {docname_of(base_url, h.split("#")[0]) for h in hrefs}
    missing = [d for d in DOCNAMES if d not in linked]
    assert not missing, f"sidebar misses {missing}"


def search_term(title: str) -> str:
    words = re.findall(r"[A-Za-z]{5,}", title)
    assert words, f"no word to search for in the title {title!r}"
    return max(words, key=len).lower()


@pytest.mark.parametrize("docname", CHAPTERS)
def test_search_finds_chapter(browser_context, base_url, network_log, reports, docname):
    term = search_term(reports[docname].title)
    report = PageReport("search", base_url)
    page = open_page(browser_context, network_log, f"{base_url}search.html?q={quote(term)}", report)
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results .search-summary');"
        " return s && /found|did not match/i.test(s.textContent); }"
    )
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
    page.close()
    found = {docname_of(base_url, h.split("?")[0].split("#")[0]) for h in hrefs}
    assert docname in found, f"searching {term!r} found {sorted(found)}"
    assert not report.console_errors and not report.page_errors, report.console_errors + report.page_errors


def test_no_request_left_localhost(browser_context, reports, network_log):
    """Whole session, including navigation and search: nothing left 127.0.0.1."""
    assert reports  # every page was visited
    assert not network_log.blocked, network_log.blocked
