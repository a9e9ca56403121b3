"""dendnotes: the shared code of the book *How could a brain solve credit assignment?*

One module per topic; every chapter imports from here rather than re-implementing.
"""

from . import backprop, data, mlp, perturbation, plotting, training
from .backprop import Backprop
from .mlp import MLP
from .training import History, fit, seed_everything

__version__ = "0.1.0"

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
