"""A multilayer perceptron that every learning rule in the book trains.

The network computes, for layers l = 1..L,

    a_l = h_{l-1} W_l^T + b_l,     h_l = f(a_l)  (hidden layers),     output = a_L,

with h_0 = x. The output layer is linear: the loss (softmax cross-entropy or
squared error) turns a_L into a number. Rules read the cached a_l and h_l and
write their own weight updates; none of them needs autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
LOSSES = ("cross_entropy", "mse")


def activation_function(name: str, a: torch.Tensor) -> torch.Tensor:
    """f(a) for the named nonlinearity."""
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "tanh":
        return torch.tanh(a)
    if name == "relu":
        return torch.relu(a)
    if name == "linear":
        return a
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


def activation_derivative(name: str, a: torch.Tensor) -> torch.Tensor:
    """f'(a), written out (sigmoid' = s(1 - s), tanh' = 1 - tanh^2, relu' = [a > 0])."""
    if name == "sigmoid":
        s = torch.sigmoid(a)
        return s * (1 - s)
    if name == "tanh":
        return 1 - torch.tanh(a) ** 2
    if name == "relu":
        return (a > 0).to(a.dtype)
    if name == "linear":
        return torch.ones_like(a)
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


def reduce_loss(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-example losses as they are ("none") or averaged over the batch ("mean")."""
    if reduction == "none":
        return per_example
    if reduction == "mean":
        return per_example.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


@dataclass
class ForwardCache:
    """What a forward pass leaves behind: pre-activations a_1..a_L and activities h_0..h_L."""

    pre: list[torch.Tensor]
    post: list[torch.Tensor]

    @property
    def output(self) -> torch.Tensor:
        return self.pre[-1]


class MLP(torch.nn.Module):
    """Fully connected network with sizes [n_0, n_1, ..., n_L].

    Weights W_l have shape (n_l, n_{l-1}) and start uniform in [-r, r], with
    r = 1/sqrt(n_{l-1}) unless ``init_range`` gives r. Biases start at zero.
    ``seed`` makes the initial weights independent of the global RNG.
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "sigmoid",
        loss: str = "cross_entropy",
        bias: bool = True,
        init_range: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        self.sizes = [int(n) for n in sizes]
        self.activation = activation
        self.loss_name = loss
        generator = torch.Generator().manual_seed(seed)
        weights, biases = [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            r = init_range if init_range is not None else n_in**-0.5
            w = (torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * r
            weights.append(torch.nn.Parameter(w.to(dtype)))
            if bias:
                biases.append(torch.nn.Parameter(torch.zeros(n_out, dtype=dtype)))
        self.weights = torch.nn.ParameterList(weights)
        self.biases = torch.nn.ParameterList(biases)

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    @property
    def has_bias(self) -> bool:
        return len(self.biases) > 0

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for an input of the wrong shape."""
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(
                f"input must have shape (batch, {self.sizes[0]}), got {tuple(x.shape)}"
            )

    def forward_with_cache(
        self, x: torch.Tensor, pre_noise: list[torch.Tensor] | None = None
    ) -> ForwardCache:
        """Forward pass keeping a_l and h_l; ``pre_noise[l]`` is added to a_{l+1} if given."""
        self.check_input(x)
        if pre_noise is not None and len(pre_noise) != self.n_layers:
            raise ValueError(f"pre_noise needs one tensor per layer ({self.n_layers})")
        pre, post = [], [x]
        for l, w in enumerate(self.weights):
            a = post[-1] @ w.T
            if self.has_bias:
                a = a + self.biases[l]
            if pre_noise is not None:
                a = a + pre_noise[l]
            pre.append(a)
            is_output = l == self.n_layers - 1
            post.append(a if is_output else activation_function(self.activation, a))
        return ForwardCache(pre, post)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_cache(x).output

    def targets(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Labels as the loss needs them: class indices stay, or become one-hot for mse."""
        if y.shape[0] != output.shape[0]:
            raise ValueError(f"{output.shape[0]} outputs but {y.shape[0]} targets")
        if self.loss_name == "cross_entropy":
            if y.dtype != torch.int64 or y.dim() != 1:
                raise ValueError("cross_entropy needs int64 class indices of shape (batch,)")
            if y.min() < 0 or y.max() >= output.shape[1]:
                raise ValueError(f"class labels must lie in [0, {output.shape[1] - 1}]")
            return y
        if y.dtype == torch.int64:
            return torch.nn.functional.one_hot(y, output.shape[1]).to(output.dtype)
        if y.shape != output.shape:
            raise ValueError(f"mse targets must have shape {tuple(output.shape)}, got {tuple(y.shape)}")
        return y

    def loss(self, output: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy of softmax(output), or 0.5 ||output - t||^2, per example or averaged."""
        t = self.targets(output, y)
        if self.loss_name == "cross_entropy":
            per_example = torch.nn.functional.cross_entropy(output, t, reduction="none")
        else:
            per_example = 0.5 * ((output - t) ** 2).sum(dim=1)
        return reduce_loss(per_example, reduction)

    def output_error(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """e = dL/da_L of the batch-mean loss: (softmax(a_L) - onehot(y))/N, or (a_L - t)/N."""
        t = self.targets(output, y)
        if self.loss_name == "cross_entropy":
            t = torch.nn.functional.one_hot(t, output.shape[1]).to(output.dtype)
            return (torch.softmax(output, dim=1) - t) / output.shape[0]
        return (output - t) / output.shape[0]

    def updates_from_deltas(
        self, cache: ForwardCache, deltas: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Turn per-layer errors delta_l = dL/da_l into dW_l = delta_l^T h_{l-1}, db_l = sum delta_l.

        Returns the updates in the order of ``self.parameters()`` (all weights, then all biases).
        """
        d_weights = [d.T @ h for d, h in zip(deltas, cache.post[:-1])]
        d_biases = [d.sum(dim=0) for d in deltas] if self.has_bias else []
        return d_weights + d_biases
