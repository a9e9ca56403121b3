"""Backpropagation written out with tensors, and autograd's answer to check it against.

For the MLP of :mod:`dendnotes.mlp` (Rumelhart, Hinton & Williams 1986):

    delta_L = dL/da_L                                 (the output error e)
    delta_l = (delta_{l+1} W_{l+1}) * f'(a_l)         (row-vector form of W^T delta)
    dL/dW_l = delta_l^T h_{l-1},   dL/db_l = sum over the batch of delta_l

The backward pass sends errors through W_{l+1}, the same weights the forward pass
used: the "weight transport" that the feedback-alignment chapter removes.
"""

from __future__ import annotations

import torch

from .mlp import MLP, ForwardCache, activation_derivative
from .training import LearningRule


def propagate_deltas(
    net: MLP, cache: ForwardCache, output_error: torch.Tensor, backward_weights: list[torch.Tensor]
) -> list[torch.Tensor]:
    """delta_1..delta_L with delta_l = (delta_{l+1} M_{l+1}) * f'(a_l).

    ``backward_weights[l]`` is the matrix M (shape of W_l) that carries errors from
    layer l+1 down to layer l: W itself for backprop, another matrix for other rules.
    """
    deltas = [output_error]
    for l in range(net.n_layers - 1, 0, -1):
        back = deltas[0] @ backward_weights[l]
        deltas.insert(0, back * activation_derivative(net.activation, cache.pre[l - 1]))
    return deltas


def backprop_deltas(net: MLP, cache: ForwardCache, output_error: torch.Tensor) -> list[torch.Tensor]:
    """delta_1..delta_L, sending the output error back through the forward weights."""
    return propagate_deltas(net, cache, output_error, list(net.weights))


@torch.no_grad()
def backprop_gradients(net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and dL/dparameter for every parameter of ``net``, without autograd."""
    cache = net.forward_with_cache(x)
    loss = net.loss(cache.output, y)
    deltas = backprop_deltas(net, cache, net.output_error(cache.output, y))
    return loss, net.updates_from_deltas(cache, deltas)


def autograd_gradients(net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The same gradients computed by torch.autograd, for checking."""
    params = list(net.parameters())
    with torch.enable_grad():
        loss = net.loss(net(x), y)
        grads = torch.autograd.grad(loss, params)
    return loss.detach(), list(grads)


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """||a - b|| / max(||a||, ||b||) over all tensors flattened together."""
    flat_a, flat_b = flatten(a), flatten(b)
    scale = max(float(flat_a.norm()), float(flat_b.norm()), 1e-300)
    return float((flat_a - flat_b).norm()) / scale


def flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    """All tensors as one long vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


class Backprop(LearningRule):
    """Gradient descent with the gradients of :func:`backprop_gradients`."""

    name = "BP"

    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        return backprop_gradients(self.net, x, y)
