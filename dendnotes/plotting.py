"""Figures the chapters share, and the one colour per learning rule that every chapter uses."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .training import History

# One colour per rule, the same in every chapter (keys: the rules' short names, as in
# the result files' config["rule"]). Random-feedback rules are blues, learned or
# sign-copied feedback greens and purples, perturbation reds, relaxation orange.
RULE_COLORS = {
    "BP": "#222222",
    "Readout only": "#9e9e9e",
    "FA": "#1f77b4",
    "DFA": "#17becf",
    "SS": "#9467bd",
    "KP": "#2ca02c",
    "WP": "#ff9896",
    "NP": "#d62728",
    "EP": "#ff7f0e",
    "SD": "#8c564b",
    "SD-spiking": "#c49c94",
    "Burstprop": "#e377c2",
    "Burstprop-learned": "#bcbd22",
}


def rule_color(rule: str) -> str:
    """The palette colour of ``rule`` (a key of RULE_COLORS)."""
    if rule not in RULE_COLORS:
        raise KeyError(f"no colour for rule {rule!r}; known: {sorted(RULE_COLORS)}")
    return RULE_COLORS[rule]


def plot_histories(histories: dict[str, History], metric: str = "test_accuracy", ax=None,
                   colors: dict[str, str] | None = None, **style):
    """One learning curve per rule: ``metric`` against epoch; ``colors`` maps labels to colours."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, history in histories.items():
        color = (colors or {}).get(label)
        ax.plot(history.epochs, history[metric], marker="o", ms=3, label=label, color=color, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(frameon=False)
    return ax


def plot_seed_band(ax, epochs, curves, *, color: str, label: str, alpha: float = 0.2):
    """Mean over seeds (rows of ``curves``) as a line, mean +- one standard deviation as a band."""
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[1] != len(epochs):
        raise ValueError(f"curves must have shape (seeds, {len(epochs)}), got {curves.shape}")
    mean = curves.mean(axis=0)
    sd = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
    ax.plot(epochs, mean, color=color, label=f"{label} (n={len(curves)})")
    ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=alpha, lw=0)
    return ax
