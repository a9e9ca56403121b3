"""dendnotes.widgets: controls over precomputed views, linked in the browser (no kernel needed)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dendnotes.widgets import EXPLORER_CLASS, figure_png, precomputed_explorer  # noqa: E402


def render(width, rule):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, width])
    return f"{rule} at width {width}", fig


def stacks(widget):
    if isinstance(widget, widgets.Stack):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from stacks(child)


def test_explorer_precomputes_every_setting_and_links_controls(monkeypatch):
    links = []
    real_jslink = widgets.jslink
    monkeypatch.setattr(widgets, "jslink", lambda source, target: links.append((source, target)) or real_jslink(source, target))
    explorer = precomputed_explorer(render, width=[4, 16, 64], rule=["FA", "BP"])
    assert EXPLORER_CLASS in explorer._dom_classes
    width, rule, shown = explorer.children
    assert isinstance(width, widgets.SelectionSlider) and width.options == ("4", "16", "64")
    assert isinstance(rule, widgets.ToggleButtons) and rule.options == ("FA", "BP")
    leaves = [c for s in stacks(shown) for c in s.children if not isinstance(c, widgets.Stack)]
    texts = sorted(leaf.children[0].value for leaf in leaves)
    assert texts == sorted(f"{r} at width {w}" for w in (4, 16, 64) for r in ("FA", "BP"))
    assert all(isinstance(leaf.children[1], widgets.Image) for leaf in leaves)
    # One Stack for the first control, one per value of it for the second; each linked in the browser.
    assert all(source[1] == "index" and target[1] == "selected_index" for source, target in links)
    linked = {id(target[0]): source[0] for source, target in links}
    all_stacks = list(stacks(shown))
    assert len(all_stacks) == 1 + 3
    assert linked[id(all_stacks[0])] is width
    assert all(linked[id(s)] is rule for s in all_stacks[1:])


def test_explorer_switches_view_when_the_control_moves():
    explorer = precomputed_explorer(lambda sigma: f"sigma {sigma}", sigma=[0.1, 1.0])
    slider, shown = explorer.children
    assert shown.selected_index == 0
    slider.index = 1  # a jslink moves the Stack in the browser; mirror it here
    shown.selected_index = slider.index
    assert shown.children[shown.selected_index].children[0].value == "sigma 1.0"


def test_explorer_starts_at_the_initial_values():
    explorer = precomputed_explorer(lambda width, rule: f"{rule} {width}", width=[4, 16, 64], rule=["FA", "BP"],
                                    initial={"width": 16})
    width, rule, shown = explorer.children
    assert (width.index, rule.index) == (1, 0)  # the slider keeps its order and starts in the middle
    assert shown.selected_index == 1
    inner = shown.children[shown.selected_index]
    assert inner.selected_index == 0
    assert inner.children[inner.selected_index].children[0].value == "FA 16"


@pytest.mark.parametrize("initial, message", [
    ({"depth": 2}, "not a control"),
    ({"width": 5}, "not one of its values"),
])
def test_explorer_rejects_bad_initial_values(initial, message):
    with pytest.raises(ValueError, match=message):
        precomputed_explorer(lambda width: "x", width=[4, 16], initial=initial)


def test_figure_png_is_white_and_closes_the_figure():
    fig, _ = plt.subplots()
    png = figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("grid, message", [
    ({}, "at least one control"),
    ({"width": [4]}, "at least two values"),
    ({"width": list(range(65))}, "at most 64"),
    ({"width": [1.0, 1]}, "distinct labels"),
])
def test_explorer_rejects_bad_grids(grid, message):
    with pytest.raises(ValueError, match=message):
        precomputed_explorer(lambda **kw: "x", **grid)


def test_explorer_rejects_bad_render_output():
    with pytest.raises(TypeError, match="render must return"):
        precomputed_explorer(lambda a: 3, a=[1, 2])
