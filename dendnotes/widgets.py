"""Controls that work in the online book too: sliders over precomputed results.

The online book has no Python kernel, so a control there cannot run code.
:func:`precomputed_explorer` renders every combination of its controls' values
while the notebook runs (a figure, a line of text, or both) and links each
control to the view it selects in the browser (``ipywidgets.jslink``). The
widget state saved in the executed notebook carries the views and the links,
so moving a control in the static HTML switches views without Python; in a
live notebook it works the same way. A chapter adds one with a few lines::

    def render(width, sigma):
        stats = ...                      # compute for this setting
        fig, ax = plt.subplots()
        ...
        return f"SNR {stats['snr']:.2g}", fig

    display(precomputed_explorer(render, width=[4, 16, 64], sigma=[1e-4, 1e-2]))

The grid is rendered in full: keep it small (every cell is one PNG in the page).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from numbers import Number

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

EXPLORER_CLASS = "dendnotes-explorer"
MAX_VIEWS = 64
FIGURE_DPI = 80


def figure_png(fig: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """The figure as PNG bytes on a white background (readable in the book's dark theme), then closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _view(rendered) -> widgets.Widget:
    """A widget showing what ``render`` returned: text, a figure, or a (text, figure) pair."""
    parts = rendered if isinstance(rendered, tuple) else (rendered,)
    children = []
    for part in parts:
        if isinstance(part, str):
            children.append(widgets.HTML(part))
        elif isinstance(part, Figure):
            children.append(widgets.Image(value=figure_png(part), format="png"))
        else:
            raise TypeError(f"render must return text, a matplotlib Figure or a tuple of them, got {type(part).__name__}")
    return widgets.VBox(children)


def _control(name: str, values: Sequence) -> widgets.Widget:
    """A slider over numbers, buttons over anything else; its ``index`` trait picks the value."""
    labels = [f"{v:g}" if isinstance(v, Number) and not isinstance(v, bool) else str(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"values of {name!r} must have distinct labels, got {labels}")
    numeric = all(isinstance(v, Number) and not isinstance(v, bool) for v in values)
    if numeric:
        return widgets.SelectionSlider(options=labels, description=name, style={"description_width": "initial"},
                                       continuous_update=True)
    # Buttons as wide as their labels, so that many options fit on one line.
    return widgets.ToggleButtons(options=labels, description=name,
                                 style={"description_width": "initial", "button_width": "auto"})


def precomputed_explorer(render: Callable, *, initial: dict | None = None, **grid: Sequence) -> widgets.VBox:
    """Controls over ``grid`` (name -> values) and the views ``render(**setting)`` made for every setting.

    ``render`` gets one value per name and returns text (HTML), a matplotlib Figure, or a
    tuple of them. The controls start at each list's first value, or at the value that
    ``initial`` (name -> value) gives (so a slider can keep its values in order and still
    start in the middle). ``initial`` is therefore not available as a control's name.
    """
    if not grid:
        raise ValueError("precomputed_explorer needs at least one control, e.g. width=[4, 16, 64]")
    for name, values in grid.items():
        if len(values) < 2:
            raise ValueError(f"control {name!r} needs at least two values, got {list(values)}")
    start = {name: 0 for name in grid}
    for name, value in (initial or {}).items():
        if name not in grid:
            raise ValueError(f"initial value for {name!r}, which is not a control; controls: {list(grid)}")
        if value not in list(grid[name]):
            raise ValueError(f"initial value {value!r} of {name!r} is not one of its values {list(grid[name])}")
        start[name] = list(grid[name]).index(value)
    n_views = 1
    for values in grid.values():
        n_views *= len(values)
    if n_views > MAX_VIEWS:
        raise ValueError(f"{n_views} settings to precompute; keep the grid at most {MAX_VIEWS} (each is a PNG in the page)")
    controls = {name: _control(name, values) for name, values in grid.items()}
    for name, control in controls.items():
        control.index = start[name]
    names = list(grid)
    views = {combo: _view(render(**dict(zip(names, combo)))) for combo in itertools.product(*grid.values())}

    def stack(level: int, prefix: tuple) -> widgets.Widget:
        # One Stack per control: its selected child follows the control's index, in the browser.
        if level == len(names):
            return views[prefix]
        values = grid[names[level]]
        shown = widgets.Stack([stack(level + 1, prefix + (v,)) for v in values], selected_index=start[names[level]])
        widgets.jslink((controls[names[level]], "index"), (shown, "selected_index"))
        return shown

    explorer = widgets.VBox([*controls.values(), stack(0, ())])
    explorer.add_class(EXPLORER_CLASS)
    return explorer
