"""Schematics of the book's ideas, drawn with matplotlib patches and arrows.

Every function returns a :class:`matplotlib.figure.Figure` and draws from code only
(no image files to keep in sync with the text). The symbols follow the book's
notation page (``book/notation.md``)::

    from dendnotes import diagrams
    diagrams.backprop_passes()

One per chapter at least: :func:`credit_assignment` (1), :func:`backprop_passes` (2),
:func:`feedback_wiring` (3), :func:`energy_phases` (4), :func:`three_compartment_neuron`
(5), :func:`events_and_bursts` and :func:`xor_circuit` (6), :func:`obstacles_by_rule` (7).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon

FORWARD = "#1f5fa8"  # activity flowing up
FEEDBACK = "#c0392b"  # errors, feedback, teaching signals
LOCAL = "#2e8b57"  # local or learned quantities
GREY = "#7f7f7f"
FILL = "#f4f4f4"

# Chapter 6's symbols, as on book/notation.md: event and burst trains, burst probability.
EVENTS, BURSTS, BURST_PROBABILITY = r"\mathcal{E}", r"\mathcal{B}", "p"


def canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float], ncols: int = 1,
           equal: bool = True):
    """A figure with ``ncols`` axes in data coordinates (equal aspect unless ``equal`` is False), no frame."""
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    for ax in axes[0]:
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        if equal:
            ax.set_aspect("equal")
        ax.axis("off")
    return fig, list(axes[0])


def arrow(ax, start, end, color=FORWARD, style="-|>", width=1.6, dashed=False, bend=0.0, label=None,
          label_offset=(0.0, 0.0), fontsize=10, shrink=4.0):
    """An arrow from ``start`` to ``end`` (optionally curved by ``bend``), with an optional label
    placed at its midpoint plus ``label_offset``."""
    patch = FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, lw=width,
                            linestyle="--" if dashed else "-", connectionstyle=f"arc3,rad={bend}",
                            shrinkA=shrink, shrinkB=shrink)
    ax.add_patch(patch)
    if label is not None:
        middle = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*middle, label, color=color, fontsize=fontsize, ha="center", va="center")
    return patch


def box(ax, center, text, width=1.6, height=0.7, color=GREY, fill=FILL, fontsize=10, text_color="black"):
    """A rounded box with centred text."""
    x, y = center
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                ec=color, fc=fill, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=text_color)


def units(ax, x, ys, radius=0.22, color=FORWARD, fill="white"):
    """A column of units (circles) at ``x``; returns their centres."""
    centres = [(x, y) for y in ys]
    for c in centres:
        ax.add_patch(Circle(c, radius, ec=color, fc=fill, lw=1.5, zorder=3))
    return centres


def layer_ys(n: int, spread: float = 1.0, middle: float = 0.0) -> list[float]:
    return list(np.linspace(middle - spread * (n - 1) / 2, middle + spread * (n - 1) / 2, n))


def connect(ax, left, right, color=GREY, width=0.6, alpha=0.6):
    """Thin lines from every unit in ``left`` to every unit in ``right``."""
    for a in left:
        for b in right:
            ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=width, alpha=alpha, zorder=1)


# ---------------------------------------------------------------------------
# chapter 1
# ---------------------------------------------------------------------------


def credit_assignment() -> Figure:
    """Chapter 1: perturb a unit, measure the change of the loss, broadcast one number back."""
    fig, (ax,) = canvas(9.0, 3.6, (-0.8, 10.2), (-2.2, 2.0))
    inputs = units(ax, 0.5, layer_ys(3, 1.0))
    hidden = units(ax, 2.8, layer_ys(4, 0.9))
    outputs = units(ax, 5.1, layer_ys(2, 1.0))
    connect(ax, inputs, hidden)
    connect(ax, hidden, outputs)
    for x, name in ((0.5, "input $x$"), (2.8, "hidden $h_1$"), (5.1, "output $a_2$")):
        ax.text(x, 1.75, name, ha="center", fontsize=10)
    wiggled = hidden[1]
    ax.add_patch(Circle(wiggled, 0.22, ec=FEEDBACK, fc="#f6d5d1", lw=2, zorder=4))
    ax.text(wiggled[0] - 0.35, wiggled[1] - 0.05, r"$+\sigma\xi$", color=FEEDBACK, fontsize=11, ha="right",
            va="center", zorder=5)
    box(ax, (7.6, 0.0), "loss $\\mathcal{L}$\n(one number)", width=2.0, height=1.0)
    for o in outputs:
        arrow(ax, o, (6.55, 0.0), color=GREY, width=1.0)
    # the global signal returns to every synapse
    arrow(ax, (7.6, -0.55), (2.8, -1.75), color=FEEDBACK, dashed=True, bend=-0.15,
          label=r"broadcast $\Delta\mathcal{L}$ to every synapse", label_offset=(1.0, -0.35))
    ax.text(4.2, -2.15, r"estimate: $\hat g = \dfrac{\Delta\mathcal{L}}{\sigma}\,\xi\ \times$ presynaptic activity",
            ha="center", fontsize=10, color=FEEDBACK)
    ax.text(9.9, 1.45, "1. wiggle\n2. measure\n3. credit the wiggle", fontsize=10, ha="right", va="top")
    return fig


# ---------------------------------------------------------------------------
# chapter 2
# ---------------------------------------------------------------------------


def backprop_passes() -> Figure:
    """Chapter 2: the forward pass (activities up) and the backward pass (errors down)."""
    fig, (ax,) = canvas(10.5, 3.6, (-0.6, 14.2), (-2.6, 2.4))
    xs = (0.6, 4.2, 7.8, 11.4)
    stages = list(zip(xs, ("$h_0 = x$", "$h_1 = f(a_1)$", "$h_2 = f(a_2)$", "$a_3$")))
    for x, text in stages:
        box(ax, (x, 1.0), text, width=1.9)
    box(ax, (13.5, 0.0), r"$\mathcal{L}$", width=0.8, height=0.8)
    for x0, x1, l in zip(xs[:-1], xs[1:], range(1, 4)):
        arrow(ax, (x0 + 1.0, 1.0), (x1 - 1.0, 1.0), label=f"$W_{l}$", label_offset=(0, 0.3))
    arrow(ax, (12.4, 1.0), (13.4, 0.45), color=GREY)
    deltas = list(zip(xs[1:], (r"$\delta_1$", r"$\delta_2$", r"$\delta_3 = e$")))
    for x, text in deltas:
        box(ax, (x, -1.0), text, width=1.9, color=FEEDBACK, fill="#fbeae8")
    arrow(ax, (13.4, -0.45), (12.4, -1.0), color=FEEDBACK)
    for x0, x1, l in zip(xs[1:-1], xs[2:], (2, 3)):
        arrow(ax, (x1 - 1.0, -1.0), (x0 + 1.0, -1.0), color=FEEDBACK)
        ax.text((x0 + x1) / 2, -0.55, rf"$W_{l}^\top$", color=FEEDBACK, ha="center", fontsize=10)
        ax.text((x0 + x1) / 2, -1.5, rf"$\odot f'(a_{l - 1})$", color=FEEDBACK, ha="center", fontsize=10)
    for x in xs[1:]:
        ax.plot([x, x], [-0.62, 0.62], color=GREY, ls=":", lw=1.2)
    ax.text(0.6, 0.2, "forward pass", color=FORWARD, fontsize=10, ha="center")
    ax.text(0.6, -1.0, "backward pass", color=FEEDBACK, fontsize=10, ha="center")
    ax.text(7.0, -2.35, r"each weight: $\partial\mathcal{L}/\partial W_l = \delta_l\, h_{l-1}^\top$"
            r"   (dotted: $f'(a_l)$ and $h_{l-1}$ are kept until $\delta_l$ arrives)", ha="center", fontsize=10)
    ax.text(7.0, 2.1, "activities flow up; errors flow down through the transposed weights", ha="center",
            fontsize=10, color=GREY)
    return fig


# ---------------------------------------------------------------------------
# chapter 3
# ---------------------------------------------------------------------------


def feedback_wiring() -> Figure:
    """Chapter 3: where the hidden errors come from in BP, FA, DFA and KP."""
    panels = [
        ("backprop", "exact transpose", [(r"$W_2^\top$", 2, 1), (r"$W_3^\top$", 3, 2)]),
        ("feedback alignment", "fixed random $B_l$", [(r"$B_2$", 2, 1), (r"$B_3$", 3, 2)]),
        ("direct feedback alignment", "fixed random $D_l$, from the output", [(r"$D_2$", 3, 2), (r"$D_1$", 3, 1)]),
        ("Kolen-Pollack", "$B_l$ learns like $W_l^\\top$, both decay", [(r"$B_2$", 2, 1), (r"$B_3$", 3, 2)]),
    ]
    fig, axes = canvas(12.0, 3.9, (-1.3, 2.3), (-0.8, 4.4), ncols=4)
    for ax, (title, subtitle, links) in zip(axes, panels):
        heights = [0.0, 1.2, 2.4, 3.6]
        for level, y in enumerate(heights):
            box(ax, (0.0, y), f"$h_{level}$" if level < 3 else "$a_3$", width=1.1, height=0.55)
        for level in range(3):
            arrow(ax, (-0.25, heights[level] + 0.3), (-0.25, heights[level + 1] - 0.3),
                  label=f"$W_{level + 1}$", label_offset=(-0.42, 0))
        for label, top, bottom in links:
            direct = top - bottom > 1
            arrow(ax, (0.35 if not direct else 0.55, heights[top] - 0.3),
                  (0.35 if not direct else 0.55, heights[bottom] + 0.3), color=FEEDBACK,
                  bend=-0.55 if direct else 0.0, label=label,
                  label_offset=(1.0 if direct else 0.5, 0.0))
        if title == "Kolen-Pollack":
            ax.text(1.2, 1.7, r"$\Delta B_l = \Delta W_l^\top$", color=LOCAL, fontsize=9, ha="center",
                    rotation=90, va="center")
        ax.text(0.5, 4.25, title, ha="center", fontsize=11, weight="bold")
        ax.text(0.5, -0.7, subtitle, ha="center", fontsize=9, color=FEEDBACK)
    fig.text(0.5, 0.02, r"blue: forward weights; red: the matrix that carries the error $e$ down to $\delta_l$",
             ha="center", fontsize=10)
    return fig


# ---------------------------------------------------------------------------
# chapter 4
# ---------------------------------------------------------------------------


def energy_phases() -> Figure:
    """Chapter 4: the free phase settles to s^0, the nudged phase (output pulled towards the target y)
    to s^beta; the update contrasts the two."""
    fig = plt.figure(figsize=(11.0, 3.8))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.0, 1.0, 1.25], wspace=0.05)
    titles = ("free phase: $x$ clamped, relax", r"nudged: output pulled to $\mathbf{y}$")
    for panel, title in enumerate(titles):
        ax = fig.add_subplot(grid[0, panel])
        ax.set_xlim(-1.6, 2.4)
        ax.set_ylim(-0.9, 4.0)
        ax.set_aspect("equal")
        ax.axis("off")
        names = ("$x$", r"$s_1$", r"$s_2$")
        state = "0" if panel == 0 else r"\beta"
        for level, y in enumerate((0.0, 1.4, 2.8)):
            text = names[level] if level == 0 else f"{names[level][:-1]}^{{{state}}}$"
            box(ax, (0.0, y), text, width=1.1, height=0.6,
                color=GREY if level == 0 else FORWARD)
        for y0, y1, l in ((0.0, 1.4, 1), (1.4, 2.8, 2)):
            arrow(ax, (-0.15, y0 + 0.32), (-0.15, y1 - 0.32), style="<|-|>", label=f"$W_{l}$",
                  label_offset=(-0.5, 0))
        if panel == 1:
            box(ax, (1.6, 2.8), r"$\mathbf{y}$", width=0.6, height=0.6, color=FEEDBACK, fill="#fbeae8")
            arrow(ax, (1.28, 2.8), (0.58, 2.8), color=FEEDBACK, label=r"$\beta$", label_offset=(0, 0.3))
        ax.text(0.3, 3.65, title, ha="center", fontsize=10)
    ax = fig.add_subplot(grid[0, 2])
    fig.text(0.3, 0.06, "symmetric connections: one $W_l$ carries signals both ways", ha="center", fontsize=9,
             color=GREY)
    s = np.linspace(-2.4, 2.4, 200)
    energy = 0.5 * (s + 0.8) ** 2
    nudged = energy + 0.6 * (s - 1.8) ** 2
    ax.plot(s, energy, color=FORWARD, label=r"$E(s)$")
    ax.plot(s, nudged, color=FEEDBACK, label=r"$F = E + \beta C$")
    for curve, color, name in ((energy, FORWARD, r"$s^0$"), (nudged, FEEDBACK, r"$s^\beta$")):
        i = np.argmin(curve)
        ax.plot(s[i], curve[i], "o", color=color)
        ax.annotate(name, (s[i], curve[i]), textcoords="offset points", xytext=(0, -16), ha="center",
                    color=color, fontsize=11)
    ax.set_xlabel("state $s$")
    ax.set_yticks([])
    ax.set_xticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_ylim(-0.4, 4.0)
    ax.legend(frameon=False, fontsize=10, loc="lower right")
    ax.set_title(r"$\Delta W \propto -\frac{1}{\beta}\left[\frac{\partial E}{\partial W}(s^\beta)"
                 r" - \frac{\partial E}{\partial W}(s^0)\right]$", fontsize=11)
    return fig


# ---------------------------------------------------------------------------
# chapter 5
# ---------------------------------------------------------------------------


def three_compartment_neuron() -> Figure:
    """Chapter 5: basal, somatic and apical compartments of a hidden neuron, and the two phases."""
    fig = plt.figure(figsize=(11.5, 4.6))
    grid = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.3], wspace=0.05)
    ax = fig.add_subplot(grid[0, 0])
    ax.set_xlim(-4.2, 4.2)
    ax.set_ylim(-3.6, 3.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.add_patch(Polygon([(-0.55, -0.45), (0.55, -0.45), (0.0, 0.6)], closed=True, ec="black", fc="#e8eef8",
                         lw=1.5, zorder=3))
    ax.text(0.0, -0.1, "$V^0$", ha="center", va="center", fontsize=11, zorder=4)
    ax.plot([0, 0], [0.6, 2.2], color="black", lw=2.5)
    for dx in (-0.6, 0.6):
        ax.plot([0, dx], [2.6, 3.3], color="black", lw=2.0)
    ax.add_patch(Circle((0, 2.6), 0.45, ec=FEEDBACK, fc="#fbeae8", lw=1.5, zorder=3))
    ax.text(0, 2.6, "$V^{0a}$", ha="center", va="center", fontsize=10, zorder=4)
    for dx in (-0.6, 0.6):
        ax.plot([0, dx], [-1.6, -2.3], color="black", lw=2.0)
    ax.plot([0, 0], [-0.45, -1.2], color="black", lw=2.5)
    ax.add_patch(Circle((0, -1.6), 0.45, ec=FORWARD, fc="#e0eaf6", lw=1.5, zorder=3))
    ax.text(0, -1.6, "$V^{0b}$", ha="center", va="center", fontsize=10, zorder=4)
    ax.text(0.65, 2.6, "apical", ha="left", va="center", fontsize=10, color=FEEDBACK)
    ax.text(0.65, -1.6, "basal", ha="left", va="center", fontsize=10, color=FORWARD)
    ax.text(0.6, -0.4, "soma", ha="left", va="center", fontsize=10)
    arrow(ax, (-3.0, 2.6), (-0.5, 2.6), color=FEEDBACK)
    ax.text(-3.1, 2.6, "feedback from\nthe output layer", fontsize=9, ha="right", va="center", color=FEEDBACK)
    arrow(ax, (-3.0, -1.6), (-0.5, -1.6))
    ax.text(-3.1, -1.6, "input from\nthe layer below", fontsize=9, ha="right", va="center", color=FORWARD)
    arrow(ax, (-0.35, -1.1), (-0.35, -0.5), color=FORWARD, shrink=1)
    ax.text(-0.5, -0.8, "$g_b$", fontsize=10, ha="right", va="center", color=FORWARD)
    arrow(ax, (-0.35, 2.1), (-0.35, 0.65), color=GREY, dashed=True, shrink=1)
    ax.text(-0.5, 1.4, "$g_a = 0$", fontsize=10, ha="right", va="center", color=GREY)
    arrow(ax, (0.45, 0.1), (2.6, 0.1), shrink=1)
    ax.text(2.7, 0.1, "spikes at\nrate $\\phi(V^0)$", fontsize=9, ha="left", va="center", color=FORWARD)
    ax.text(0.0, -3.1, "the apical voltage does not reach the soma:\nit can carry credit without changing the output",
            fontsize=9, ha="center", va="center", color=GREY)
    ax = fig.add_subplot(grid[0, 1])
    ax.set_xlim(-0.2, 10.4)
    ax.set_ylim(-1.7, 4.4)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.0, -0.6), 4.8, 4.2, boxstyle="round,pad=0.02", ec=GREY, fc="#f7f9fc"))
    ax.add_patch(FancyBboxPatch((5.2, -0.6), 4.8, 4.2, boxstyle="round,pad=0.02", ec=FEEDBACK, fc="#fdf3f2"))
    ax.text(2.4, 4.0, "forward phase", ha="center", fontsize=11, weight="bold")
    ax.text(7.6, 4.0, "target phase", ha="center", fontsize=11, weight="bold")
    ax.text(2.4, 3.15, "input only, no teacher", ha="center", fontsize=9)
    ax.text(7.6, 3.15, "teacher pushes the output\ntowards the right digit", ha="center", fontsize=9,
            va="center")
    t = np.linspace(0, 1, 60)
    forward_trace = 0.3 + 0.5 * (1 - np.exp(-t / 0.15))
    target_trace = forward_trace[-1] + 0.9 * (1 - np.exp(-t / 0.15))
    ax.plot(0.3 + 4.2 * t, forward_trace, color=FEEDBACK)
    ax.plot(5.5 + 4.2 * t, target_trace, color=FEEDBACK)
    ax.text(0.3, -0.35, r"mean apical voltage $V^{0a}(t)$", fontsize=9, color=FEEDBACK)
    for x, y, name in ((3.0, forward_trace[-1], r"$\alpha^f$"), (8.2, target_trace[-1], r"$\alpha^t$")):
        ax.add_patch(FancyBboxPatch((x, y - 0.3), 1.5, 0.6, boxstyle="round,pad=0.02", ec=FEEDBACK, fc="none",
                                    ls="--"))
        ax.text(x + 0.75, y + 0.45, f"plateau {name}", ha="center", fontsize=10, color=FEEDBACK)
    ax.text(5.0, -1.25, r"hidden update $\propto (\alpha^t - \alpha^f)\,\sigma'(V^0_f)\,s_f^{\rm in\top}$:"
            "\nthe change of the apical plateau between the phases is the neuron's error", ha="center", fontsize=10)
    return fig


# ---------------------------------------------------------------------------
# chapter 6
# ---------------------------------------------------------------------------


def events_and_bursts() -> Figure:
    """Chapter 6: one spike train read as events (first spikes) and bursts (spikes in quick succession)."""
    spikes = [8, 30, 33.5, 36.5, 55, 74, 77, 97]
    bursts = [30, 74]
    events = [8, 30, 55, 74, 97]
    fig, (ax,) = canvas(10.0, 3.0, (-14, 125), (-0.6, 3.8), equal=False)
    rows = ((3.0, "spikes", spikes, "black"), (1.9, f"events ${EVENTS}$", events, FORWARD),
            (0.8, f"bursts ${BURSTS}$", bursts, FEEDBACK))
    for y, name, times, color in rows:
        ax.plot([0, 100], [y, y], color=GREY, lw=0.6)
        ax.text(-2, y + 0.2, name, ha="right", va="center", fontsize=10, color=color)
        for t in times:
            ax.plot([t, t], [y, y + 0.55], color=color, lw=2)
    for t in bursts:
        ax.add_patch(FancyBboxPatch((t - 1.2, 2.9), 9.5 if t == 30 else 5.5, 0.75, boxstyle="round,pad=0.1",
                                    ec=FEEDBACK, fc="none", ls="--"))
    ax.text(50, -0.25, "a burst = spikes less than ~16 ms apart; an event = a single spike or the first of"
            f" a burst;  burst probability ${BURST_PROBABILITY} = {BURSTS}/{EVENTS}$ (here 2/5)", ha="center",
            fontsize=9.5)
    ax.text(101, 1.9 + 0.2, "how often it fires:\nsomatic, bottom-up", fontsize=9, color=FORWARD, va="center")
    ax.text(101, 0.8 + 0.2, "which firings burst:\napical, top-down", fontsize=9, color=FEEDBACK, va="center")
    return fig


def xor_circuit() -> Figure:
    """Chapter 6: the spiking XOR circuit: events forward, the output's bursts back to the hidden dendrites."""
    fig, (ax,) = canvas(9.5, 4.3, (-1.0, 11.0), (-2.2, 3.0))
    populations = {"input 1": (0.8, 1.4), "input 2": (0.8, -0.6), "hidden 1": (4.6, 1.4),
                   "hidden 2": (4.6, -0.6), "output": (8.4, 0.4)}
    for name, centre in populations.items():
        box(ax, centre, name, width=1.7, height=0.75, color=FORWARD if name != "output" else "black")
    for i in ("input 1", "input 2"):
        for h in ("hidden 1", "hidden 2"):
            arrow(ax, (populations[i][0] + 0.9, populations[i][1]), (populations[h][0] - 0.9, populations[h][1]))
    for h in ("hidden 1", "hidden 2"):
        arrow(ax, (populations[h][0] + 0.9, populations[h][1]), (8.4 - 0.9, 0.4))
    ax.text(2.7, 2.15, "$W_1$ (plastic)", ha="center", color=FORWARD, fontsize=10)
    ax.text(6.5, 1.55, "$W_2$ (plastic)", ha="center", color=FORWARD, fontsize=10)
    arrow(ax, (8.4, 0.8), (4.6, 1.8), color=FEEDBACK, bend=0.4)
    arrow(ax, (8.4, 0.0), (4.6, -1.0), color=FEEDBACK, bend=-0.4)
    ax.text(7.9, 2.2, "bursts, excitatory", color=FEEDBACK, fontsize=10, ha="left")
    ax.text(7.9, -1.4, "bursts, inhibitory", color=FEEDBACK, fontsize=10, ha="left")
    box(ax, (10.3, 0.4), "teacher", width=1.1, height=0.6, color=FEEDBACK, fill="#fbeae8", fontsize=9)
    arrow(ax, (9.75, 0.4), (9.3, 0.4), color=FEEDBACK)
    ax.text(5.0, -2.1, "events carry the input forward (depressing synapses); the output's bursts, "
            "net of its events, reach the hidden\ndendrites through fixed feedback and steer "
            f"burst-dependent plasticity $\\Delta W \\propto ({BURSTS} - \\bar{{{BURST_PROBABILITY}}}\\,{EVENTS})"
            f"\\,\\tilde{{{EVENTS}}}_{{\\mathrm{{pre}}}}$",
            ha="center", fontsize=9.5)
    ax.text(0.8, 2.55, "0/1 patterns", ha="center", fontsize=9, color=GREY)
    return fig


# ---------------------------------------------------------------------------
# chapter 7
# ---------------------------------------------------------------------------

OBSTACLES = ("weight transport", "separate phases", "signed, neuron-specific errors")
"""The three obstacles of chapter 2's table."""

RULE_OBSTACLES = {
    "BP": ("needs", "needs", "needs"),
    "NP": ("avoids", "partly", "avoids"),
    "FA": ("avoids", "needs", "needs"),
    "DFA": ("avoids", "needs", "needs"),
    "SS": ("partly", "needs", "needs"),
    "KP": ("partly", "needs", "needs"),
    "EP": ("needs", "partly", "avoids"),
    "SD": ("avoids", "partly", "avoids"),
    "burst-\nprop": ("avoids", "avoids", "avoids"),
}
"""How each rule of the book stands to each obstacle, as the chapters argue it.

NP: no feedback weights, one global scalar instead of per-neuron errors, but a clean and a
noisy pass (or a learned baseline). SS shares the forward weights' signs; KP gives the
feedback the forward weights' updates. EP assumes symmetric connections and contrasts two
phases of one circuit. SD uses fixed random feedback and forward/target phases, with
feedback kept in the apical dendrite. Burstprop multiplexes signals and errors in time.
"""

MARKS = {"needs": ("✗", FEEDBACK, "#fbeae8"), "partly": ("◐", "#b8860b", "#fbf3dc"),
         "avoids": ("✓", LOCAL, "#e3f2e8")}


def obstacles_by_rule(table: dict[str, tuple[str, ...]] = RULE_OBSTACLES) -> Figure:
    """Chapter 7: which obstacle to backprop in the brain each rule still needs, partly answers or avoids."""
    for rule, marks in table.items():
        if len(marks) != len(OBSTACLES) or any(m not in MARKS for m in marks):
            raise ValueError(f"{rule}: give one of {sorted(MARKS)} for each of the {len(OBSTACLES)} obstacles")
    rules = list(table)
    fig, (ax,) = canvas(1.6 + 1.05 * len(rules), 3.4, (-3.6, len(rules) + 0.1), (-1.6, len(OBSTACLES) + 1.0))
    for j, rule in enumerate(rules):
        ax.text(j + 0.5, len(OBSTACLES) + 0.2, rule, ha="center", va="bottom", fontsize=10, weight="bold")
        for i, mark in enumerate(table[rule]):
            symbol, color, fill = MARKS[mark]
            y = len(OBSTACLES) - 1 - i
            ax.add_patch(FancyBboxPatch((j + 0.06, y + 0.06), 0.88, 0.88, boxstyle="round,pad=0.0", ec="white",
                                        fc=fill))
            ax.text(j + 0.5, y + 0.5, symbol, ha="center", va="center", fontsize=15, color=color)
    for i, obstacle in enumerate(OBSTACLES):
        ax.text(-0.15, len(OBSTACLES) - 1 - i + 0.5, obstacle, ha="right", va="center", fontsize=10)
    legend = "   ".join(f"{symbol} {name} it" for name, (symbol, _, _) in MARKS.items())
    ax.text(len(rules) / 2 - 1.5, -0.7, f"{legend}   (the obstacles of chapter 2's table)", ha="center",
            fontsize=10)
    return fig


SCHEMATICS = {
    1: (credit_assignment,),
    2: (backprop_passes,),
    3: (feedback_wiring,),
    4: (energy_phases,),
    5: (three_compartment_neuron,),
    6: (events_and_bursts, xor_circuit),
    7: (obstacles_by_rule,),
}
"""The schematics of each chapter, by chapter number."""
