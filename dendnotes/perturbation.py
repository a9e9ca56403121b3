"""Perturbation learning: estimate the gradient by wiggling and watching the loss.

Weight perturbation (Jabri & Flower 1992) adds noise sigma*xi to every parameter;
node perturbation (Williams 1992; Fiete & Seung 2006) adds it to every unit's
pre-activation a_l. Both use the loss change as a global, scalar reinforcement
signal. With the antithetic (central) difference used here,

    weight:  g = [L(theta + sigma xi) - L(theta - sigma xi)] / (2 sigma) * xi
    node:    delta_l ~= [L_n(+) - L_n(-)] / (2 sigma) * xi_l,   dW_l = delta_l^T h_{l-1}

and E[xi xi^T] = I makes both unbiased up to O(sigma^2); their variance grows
with the number of perturbed weights or units (Werfel, Xie & Seung 2005).
Pass a subset of the tensors (one layer's weights, say) to
``estimator_statistics`` to measure a single layer.
"""

from __future__ import annotations

import torch

from .backprop import flatten
from .mlp import MLP
from .training import LearningRule


def check_perturbation_args(sigma: float, n_samples: int) -> None:
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")


@torch.no_grad()
def weight_perturbation_gradient(
    net: MLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float = 1e-3,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and the weight-perturbation estimate of dL/dparameter (mean of ``n_samples``)."""
    check_perturbation_args(sigma, n_samples)
    params = list(net.parameters())
    loss = net.loss(net(x), y)
    estimate = [torch.zeros_like(p) for p in params]
    for _ in range(n_samples):
        noise = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
        for p, xi in zip(params, noise):
            p.add_(sigma * xi)
        loss_plus = net.loss(net(x), y)
        for p, xi in zip(params, noise):
            p.sub_(2 * sigma * xi)
        loss_minus = net.loss(net(x), y)
        for p, xi in zip(params, noise):
            p.add_(sigma * xi)
        scale = (loss_plus - loss_minus) / (2 * sigma * n_samples)
        for e, xi in zip(estimate, noise):
            e.add_(scale * xi)
    return loss, estimate


@torch.no_grad()
def node_perturbation_gradient(
    net: MLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float = 1e-3,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and the node-perturbation estimate of dL/dparameter (mean of ``n_samples``).

    Every example gets its own noise on every unit, so the per-example loss change
    tells each synapse how its unit's wiggle mattered.
    """
    check_perturbation_args(sigma, n_samples)
    clean = net.forward_with_cache(x)
    loss = net.loss(clean.output, y)
    estimate = [torch.zeros_like(p) for p in net.parameters()]
    for _ in range(n_samples):
        noise = [
            torch.randn(a.shape, generator=generator, dtype=a.dtype).to(a.device) for a in clean.pre
        ]
        plus = net.forward_with_cache(x, pre_noise=[sigma * xi for xi in noise])
        minus = net.forward_with_cache(x, pre_noise=[-sigma * xi for xi in noise])
        change = net.loss(plus.output, y, reduction="none") - net.loss(minus.output, y, reduction="none")
        # The batch loss is the mean of per-example losses, hence the 1/N.
        per_example = (change / (2 * sigma * len(x))).unsqueeze(1)
        deltas = [per_example * xi for xi in noise]
        for e, u in zip(estimate, net.updates_from_deltas(clean, deltas)):
            e.add_(u / n_samples)
    return loss, estimate


def estimator_statistics(estimates: list[list[torch.Tensor]], true_gradient: list[torch.Tensor]) -> dict[str, float]:
    """How good a stochastic gradient estimator is, from repeated independent estimates.

    * ``cosine``: mean cosine similarity of one estimate with the true gradient;
    * ``variance``: E||g_hat - g||^2, the noise power of one estimate;
    * ``snr``: signal-to-noise ratio ||g||^2 / variance;
    * ``bias``: ||mean(g_hat) - g|| / ||g||, which shrinks as 1/sqrt(trials) if unbiased;
    * ``bias_noise_floor``: the value ``bias`` would have from sampling noise alone.
    """
    if len(estimates) < 2:
        raise ValueError("need at least two estimates to measure their spread")
    g = flatten(true_gradient).double()
    samples = torch.stack([flatten(e).double() for e in estimates])
    cosine = torch.nn.functional.cosine_similarity(samples, g.unsqueeze(0), dim=1).mean()
    noise_power = ((samples - g) ** 2).sum(dim=1).mean()
    mean_error = (samples.mean(dim=0) - g).norm()
    return {
        "cosine": float(cosine),
        "variance": float(noise_power),
        "snr": float(g.norm() ** 2 / noise_power),
        "bias": float(mean_error / g.norm()),
        "bias_noise_floor": float((noise_power / len(estimates)).sqrt() / g.norm()),
    }


class WeightPerturbation(LearningRule):
    """Descend along the weight-perturbation gradient estimate."""

    name = "WP"

    def __init__(self, net: MLP, sigma: float = 1e-3, n_samples: int = 1, seed: int = 0):
        super().__init__(net)
        check_perturbation_args(sigma, n_samples)
        self.sigma, self.n_samples = sigma, n_samples
        self.generator = torch.Generator().manual_seed(seed)

    def compute_updates(self, x, y):
        return weight_perturbation_gradient(
            self.net, x, y, sigma=self.sigma, n_samples=self.n_samples, generator=self.generator
        )


class NodePerturbation(WeightPerturbation):
    """Descend along the node-perturbation gradient estimate."""

    name = "NP"

    def compute_updates(self, x, y):
        return node_perturbation_gradient(
            self.net, x, y, sigma=self.sigma, n_samples=self.n_samples, generator=self.generator
        )
