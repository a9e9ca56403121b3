"""Figures the chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .training import History


def plot_histories(histories: dict[str, History], metric: str = "test_accuracy", ax=None, **style):
    """One learning curve per rule: ``metric`` against epoch."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, history in histories.items():
        ax.plot(history.epochs, history[metric], marker="o", ms=3, label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(frameon=False)
    return ax
