"""Checks for the book's code exercises.

Each checker takes a student's function, runs it on cases where the right answer is
known, and either returns a passing :class:`Verdict` or raises
:class:`ExerciseCheckFailed` with a message that says what is wrong: the type, the
shape (and whether it is transposed), the sign, a constant factor (a forgotten
1/N), or the first failing case. In a notebook::

    from dendnotes import check
    check.softplus_deltas(softplus_deltas)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .backprop import flatten
from .mlp import MLP, ForwardCache


class ExerciseCheckFailed(AssertionError):
    """The exercise's answer is not right yet; the message says why."""


@dataclass
class Verdict:
    """A passed check, shown in the notebook."""

    exercise: str
    message: str

    def __str__(self) -> str:
        return f"✓ {self.exercise}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**✓ {self.exercise}**: {self.message}"

    __repr__ = __str__


def fail(exercise: str, message: str):
    raise ExerciseCheckFailed(f"✗ {exercise}: {message}")


def call_student(exercise: str, function: Callable, *args):
    """Call the student's function, turning the stub's NotImplementedError into a verdict."""
    if not callable(function):
        fail(exercise, f"expected a function, got {type(function).__name__}")
    try:
        return function(*args)
    except NotImplementedError:
        fail(exercise, "not implemented yet: replace the `...` and the `raise NotImplementedError` with your code")


def compare(exercise: str, what: str, got, expected: torch.Tensor, rtol: float = 1e-6) -> None:
    """Raise a helpful ExerciseCheckFailed unless ``got`` equals ``expected`` up to ``rtol``."""
    if not isinstance(got, torch.Tensor):
        fail(exercise, f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if got.shape != expected.shape:
        hint = " (it looks transposed)" if got.dim() == 2 and got.shape == expected.T.shape else ""
        fail(exercise, f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}{hint}")
    got, expected = got.detach().double(), expected.detach().double()
    if not torch.isfinite(got).all():
        fail(exercise, f"{what} contains NaN or infinite values")
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    if error <= rtol * max(scale, 1e-12):
        return
    cosine = float(torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0))
    if cosine < -0.999:
        fail(exercise, f"{what} has the wrong sign: it points exactly opposite to the right answer")
    if cosine > 0.999 and float(expected.norm()) > 0:
        ratio = float(got.norm() / expected.norm())
        fail(exercise, f"{what} is off by a constant factor of {ratio:.4g} (a missing or extra scale, e.g. 1/N?)")
    index = tuple(int(i) for i in torch.nonzero((got - expected).abs() == error)[0])
    fail(
        exercise,
        f"{what} is wrong: at index {index} it is {float(got[index]):.6g}, expected {float(expected[index]):.6g} "
        f"(cosine with the right answer {cosine:.3f})",
    )


def softplus_network(seed: int = 0) -> tuple[MLP, ForwardCache, torch.Tensor, torch.Tensor]:
    """A float64 MLP run with softplus hidden units; returns net, cache, x and y."""
    generator = torch.Generator().manual_seed(seed)
    net = MLP([6, 5, 4, 3], activation="linear", dtype=torch.float64, seed=seed)
    x = torch.randn(7, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (7,), generator=generator)
    pre, post = [], [x]
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        a = post[-1] @ w.T + b
        pre.append(a)
        post.append(a if l == net.n_layers - 1 else torch.nn.functional.softplus(a))
    return net, ForwardCache(pre, post), x, y


def softplus_deltas(function: Callable) -> Verdict:
    """Exercise ex-backprop-softplus: errors delta_1..delta_L of a softplus network."""
    exercise = "ex-backprop-softplus"
    for seed in range(3):
        net, cache, _, y = softplus_network(seed)
        loss = net.loss(cache.output, y)
        expected = torch.autograd.grad(loss, cache.pre)
        detached = ForwardCache([a.detach() for a in cache.pre], [h.detach() for h in cache.post])
        with torch.no_grad():
            got = call_student(exercise, function, net, detached, net.output_error(detached.output, y))
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            fail(exercise, f"return a list of {len(expected)} tensors, delta_1 first; got {type(got).__name__}"
                 + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
        for l, (g, e) in enumerate(zip(got, expected), start=1):
            compare(exercise, f"delta_{l} (network seed {seed})", g, e, rtol=1e-8)
    return Verdict(exercise, "your deltas match autograd on three softplus networks")


def hidden_node_perturbation(function: Callable) -> Verdict:
    """Exercise ex-credit-layerwise: node perturbation of the hidden layer only.

    The student's ``function(net, x, y, sigma, generator)`` returns one estimate of
    dL/dW_1. It must have W_1's shape and average to the gradient (unbiased).
    """
    from .backprop import backprop_gradients

    exercise = "ex-credit-layerwise"
    generator = torch.Generator().manual_seed(0)
    net = MLP([5, 6, 3], activation="tanh", dtype=torch.float64, seed=0)
    x = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=generator)
    _, gradient = backprop_gradients(net, x, y)
    with torch.no_grad():
        sample = call_student(exercise, function, net, x, y, 1e-5, torch.Generator().manual_seed(1))
    if not isinstance(sample, torch.Tensor):
        fail(exercise, f"return one tensor, the estimate of dL/dW_1; got {type(sample).__name__}")
    if sample.shape != gradient[0].shape:
        compare(exercise, "the estimate", sample, gradient[0])
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        mean = sum(function(net, x, y, 1e-5, generator) for _ in range(1000)) / 1000
    cosine = float(torch.nn.functional.cosine_similarity(flatten([mean]), flatten(gradient[:1]), dim=0))
    if cosine < -0.9:
        fail(exercise, f"the average estimate points away from the gradient (cosine {cosine:.2f}): check the sign")
    if cosine < 0.9:
        fail(exercise, f"1,000 averaged estimates should align with dL/dW_1, but the cosine is only {cosine:.2f}")
    ratio = float(mean.norm() / gradient[0].norm())
    if not 0.8 < ratio < 1.25:
        fail(exercise, f"the average estimate is {ratio:.3g} times the gradient's length: a missing 1/N or 1/(2 sigma)?")
    return Verdict(exercise, f"unbiased: 1,000 estimates average to the gradient (cosine {cosine:.3f})")
