"""dendnotes: the shared code of the book *How could a brain solve credit assignment?*

One module per topic; every chapter imports from here rather than re-implementing.

Thread policy (the one place it is set): importing ``dendnotes`` runs torch, and
numpy's BLAS, on ``DENDNOTES_THREADS`` threads, 1 by default. The book's networks are small, so
one thread is as fast as several on an idle CPU and many times faster on a busy
one; set ``DENDNOTES_THREADS`` (e.g. to the number of cores) for large runs.
"""

import os as _os

import torch as _torch

from . import backprop, data, mlp, perturbation, plotting, training
from .backprop import Backprop
from .mlp import MLP
from .training import History, fit, seed_everything

__version__ = "0.1.0"


def _apply_thread_policy() -> None:
    value = _os.environ.get("DENDNOTES_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"DENDNOTES_THREADS must be a positive integer, got {value!r}") from None
    if threads < 1:
        raise ValueError(f"DENDNOTES_THREADS must be a positive integer, got {value!r}")
    _torch.set_num_threads(threads)
    try:  # numpy's BLAS (threadpoolctl comes with scikit-learn)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads, user_api="blas")


_apply_thread_policy()

__all__ = [
    "MLP",
    "Backprop",
    "History",
    "fit",
    "seed_everything",
    "backprop",
    "data",
    "mlp",
    "perturbation",
    "plotting",
    "training",
]
