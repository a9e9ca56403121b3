"""Burstprop: the rate-based, deep-network form of burst-dependent plasticity.

Payeur, Guerguiev, Zenke, Richards & Naud (2021) describe each pyramidal unit of
layer l by two rates: its event rate, driven by the layer below through basal
dendrites, and its burst probability, driven by the layer above through apical
dendrites. Their product is the burst rate, the only signal sent back down:

    Ebar_l = sigma(W_l Ebar_{l-1} + b_l)                                (event rate, bias b_l)
    p_l = sigma(B_{l+1} Bbar_{l+1} * (1 - Ebar_l) - Z_l Bbar_l^pre)     (burst probability)
    Bbar_l = p_l * Ebar_l                                               (burst rate)

At the output the burst probability sits at a baseline p_0 = 0.2, and a teacher
raises or lowers it: p_L^t = p_0 [(y - Ebar_L) * (1 - Ebar_L) + 1]. The teaching
signal travels down as a change of burst rate, and every layer learns with the
same local rule, the rate form of burst-dependent plasticity,

    dW_l  proportional to  (Bbar_l^t - Bbar_l) Ebar_{l-1}^T = ((p_l^t - p_l) * Ebar_l) Ebar_{l-1}^T,

"potentiate if bursts rose above what they were without the teacher". At the
output, Bbar_L^t - Bbar_L = -p_0 dL/da_L for L = 1/2 |Ebar_L - y|^2: the output update is
exactly p_0 times the gradient. In a hidden layer, to first order in the
teaching signal, p^t - p = p (1 - p) (1 - Ebar) * B (Bbar^t - Bbar)_above, so the update
is backprop's with B in place of W^T, the derivative Ebar(1 - Ebar) of the event rate,
and a positive per-unit gain p(1 - p) <= 1/4 (see :func:`linearised_burst_changes`).

* Fixed feedback: B random and fixed, as in feedback alignment.
* Learned feedback: B_l receives the same update as W_l^T and the same weight decay
  (the Kolen-Pollack scheme, which is what the authors' code does), so B_l
  converges to W_l^T and burstprop approaches backprop.
* Recurrent input Z_l (optional, on in the authors' MNIST runs) learns to cancel
  the apical input measured without the teacher, dZ_l = eta_Z u_l (Bbar_l^pre)^T
  with Bbar_l^pre = sigma(B_{l+1} Bbar_{l+1}) * Ebar_l, keeping p_l near 1/2 where the
  burst nonlinearity is steepest.

Symbols as on the book's notation page (Ebar, Bbar: its event and burst rates; B:
feedback). Conventions follow :mod:`dendnotes.feedback_alignment`: the feedback matrix
B_l carrying layer l's burst rate down is stored as B_l^T, with the shape (n_l, n_{l-1})
of W_l, so the apical input of layer l - 1 is ``burst_rate_l @ feedback``; ``feedback[k]``
belongs to layer l = k + 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .backprop import backprop_gradients
from .data import load
from .feedback_alignment import angle_between, check_feedback, random_feedback
from .mlp import MLP, ForwardCache, reduce_loss
from .results import REPO_ROOT
from .training import History, LearningRule, choose_device, fit

P_BASELINE = 0.2  # output burst probability without a teacher (Payeur et al. 2021)

# Defaults of the authors' MNIST script (jordan-g/Burstprop, train_mnist.py), for reference: three
# hidden layers of 500, batch 32, SGD with momentum 0.8 and weight decay 1e-6, learning rate 0.1
# for the hidden layers and 0.01 for the output, fixed feedback B ~ N(0, 1) (learned only with
# -weight_fa_learning true), recurrent input Z on, uniform in [-0.01, 0.01], learning rate 1e-4,
# 500 epochs; weights Xavier-normal, inputs standardised; the weight decay is subtracted as
# 1e-6 * W at every step (not scaled by the learning rate) and the updates are summed over the
# batch. We keep the batch size, the momentum and Z's settings. Their learning rates go with
# their initialisation and loss scaling, not ours; the hidden sizes below are ours.
AUTHORS_MNIST_SCRIPT = dict(hidden=(500, 500, 500), batch_size=32, momentum=0.8, weight_decay=1e-6, hidden_lr=0.1,
                            output_lr=0.01, feedback_std=1.0, recurrent_lr=1e-4, recurrent_range=0.01, epochs=500)
PAPER_BATCH_SIZE = AUTHORS_MNIST_SCRIPT["batch_size"]
PAPER_RECURRENT_LR = AUTHORS_MNIST_SCRIPT["recurrent_lr"]
PAPER_RECURRENT_RANGE = AUTHORS_MNIST_SCRIPT["recurrent_range"]
HIDDEN = (500, 500)  # two hidden layers of 500, as in Extended Data Fig. 6 (the authors' script defaults to three)
MOMENTUM = AUTHORS_MNIST_SCRIPT["momentum"]


class SigmoidMLP(MLP):
    """An MLP whose output layer is sigmoid too, scored by L = 1/2 |sigma(a_L) - onehot(y)|^2.

    Burstprop needs output units with a rate in [0, 1] (the output event rate e_L),
    so this is the architecture of Payeur et al. (2021); backprop and feedback
    alignment train it unchanged. As for :class:`MLP`, ``forward`` returns a_L
    (the arg-max is the same as sigma(a_L)'s) and ``loss``/``output_error`` take a_L.

    The output biases start at logit(1/n_L), so that untrained outputs sit at the
    mean of a one-hot target rather than at 1/2; from 1/2 the first steps push every
    output down at once, into saturation, where sigma' ~ 0 stalls learning.
    """

    def __init__(self, sizes: list[int], init_range: float | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__(sizes, activation="sigmoid", loss="mse", bias=True, init_range=init_range,
                         seed=seed, dtype=dtype)
        with torch.no_grad():
            self.biases[-1].fill_(-math.log(self.sizes[-1] - 1) if self.sizes[-1] > 1 else 0.0)

    def rates(self, output: torch.Tensor) -> torch.Tensor:
        """Output event rates e_L = sigma(a_L)."""
        return torch.sigmoid(output)

    def loss(self, output: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """1/2 |sigma(a_L) - t|^2 per example, or its batch mean."""
        t = self.targets(output, y)
        per_example = 0.5 * ((self.rates(output) - t) ** 2).sum(dim=1)
        return reduce_loss(per_example, reduction)

    def output_error(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dL/da_L of the batch-mean loss: (e - t) e (1 - e) / N."""
        t = self.targets(output, y)
        e = self.rates(output)
        return (e - t) * e * (1 - e) / output.shape[0]


def output_burst_probabilities(e_out: torch.Tensor, t: torch.Tensor, p_baseline: float = P_BASELINE):
    """(p, p^t) at the output: the baseline p_0, and p_0 [(t - e)(1 - e) + 1] with the teacher."""
    p = torch.full_like(e_out, p_baseline)
    p_teach = p_baseline * ((t - e_out) * (1 - e_out) + 1)
    return p, p_teach


class Burstprop(LearningRule):
    """Burstprop (Payeur et al. 2021) on a :class:`SigmoidMLP`.

    ``learn_feedback``: fixed random feedback B (False) or B learned with W's update
    (True; give ``fit`` a ``weight_decay`` so that B converges to W^T). ``recurrent``:
    use the recurrent input Z, learned in place by plain SGD at ``recurrent_lr``
    whenever :meth:`compute_updates` runs. ``hidden_lr_scale`` multiplies the updates
    of layer l by hidden_lr_scale ** (L - l): 4 undoes the gain p(1 - p) ~ 1/4 of each
    burst nonlinearity the teaching signal crossed (the paper instead used one larger
    learning rate for all hidden layers). Feedback matrices are uniform in [-r, r],
    r = 1/sqrt(n_{l-1}) unless ``feedback_scale`` gives r, or are given by ``feedback``.
    """

    name = "Burstprop"

    def __init__(
        self,
        net: SigmoidMLP,
        *,
        p_baseline: float = P_BASELINE,
        learn_feedback: bool = False,
        feedback_scale: float | None = None,
        recurrent: bool = False,
        recurrent_lr: float = PAPER_RECURRENT_LR,
        recurrent_range: float = PAPER_RECURRENT_RANGE,
        hidden_lr_scale: float = 1.0,
        seed: int = 0,
        feedback: list[torch.Tensor] | None = None,
    ):
        super().__init__(net)
        if not isinstance(net, SigmoidMLP):
            raise TypeError("Burstprop needs a SigmoidMLP (output rates in [0, 1]); got " + type(net).__name__)
        if not 0 < p_baseline < 1:
            raise ValueError(f"p_baseline must lie in (0, 1), got {p_baseline}")
        if hidden_lr_scale <= 0 or recurrent_lr < 0 or recurrent_range < 0:
            raise ValueError("hidden_lr_scale must be positive, recurrent_lr and recurrent_range non-negative")
        self.p_baseline = p_baseline
        self.learn_feedback = learn_feedback
        self.recurrent = recurrent
        self.recurrent_lr = recurrent_lr
        self.hidden_lr_scale = hidden_lr_scale
        self.name = "Burstprop (learned Y)" if learn_feedback else "Burstprop"
        w = net.weights[0]
        shapes = [tuple(m.shape) for m in net.weights[1:]]
        if feedback is None:
            feedback = random_feedback(shapes, scale=feedback_scale, seed=seed, dtype=w.dtype, device=w.device)
        check_feedback(feedback, shapes)
        self.feedback = [m.detach().clone() for m in feedback]
        generator = torch.Generator().manual_seed(seed + 1)
        self.recurrent_weights = [
            ((torch.rand(n, n, generator=generator, dtype=torch.float64) * 2 - 1) * recurrent_range).to(w)
            for n in net.sizes[1:-1]
        ]

    def parameters(self) -> list[torch.Tensor]:
        extra = self.feedback if self.learn_feedback else []
        return list(self.net.parameters()) + extra

    def to(self, device) -> "Burstprop":
        super().to(device)
        self.feedback = [m.to(device) for m in self.feedback]
        self.recurrent_weights = [z.to(device) for z in self.recurrent_weights]
        return self

    @torch.no_grad()
    def burst_signals(self, cache: ForwardCache, y: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Event rates e_l, burst probabilities p_l and p_l^t, burst rates b_l and b_l^t.

        Lists run over layers 1..L. Also returns, per hidden layer, the apical drive
        u_l (without the teacher) and b_l^pre, which the recurrent weights learn from.
        """
        net = self.net
        e_out = net.rates(cache.output)
        rates = cache.post[1:-1] + [e_out]
        p_out, p_out_t = output_burst_probabilities(e_out, net.targets(cache.output, y), self.p_baseline)
        p, p_t = [p_out], [p_out_t]
        b, b_t = [p_out * e_out], [p_out_t * e_out]
        drive, pre = [], []
        for l in range(net.n_layers - 2, -1, -1):  # hidden layers, top down (index l = layer l + 1)
            e = rates[l]
            apical, apical_t = b[0] @ self.feedback[l], b_t[0] @ self.feedback[l]
            recurrent = torch.zeros_like(e)
            b_pre = torch.sigmoid(apical) * e
            if self.recurrent:
                recurrent = b_pre @ self.recurrent_weights[l].T
            u = apical * (1 - e) - recurrent
            u_t = apical_t * (1 - e) - recurrent
            p.insert(0, torch.sigmoid(u))
            p_t.insert(0, torch.sigmoid(u_t))
            b.insert(0, p[0] * e)
            b_t.insert(0, p_t[0] * e)
            drive.insert(0, u)
            pre.insert(0, b_pre)
        return {"e": rates, "p": p, "p_teach": p_t, "b": b, "b_teach": b_t, "drive": drive, "b_pre": pre}

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        net = self.net
        cache = net.forward_with_cache(x)
        loss = net.loss(cache.output, y)
        signals = self.burst_signals(cache, y)
        n = x.shape[0]
        top = net.n_layers - 1
        deltas = [-(bt - b) / n * self.hidden_lr_scale ** (top - l)
                  for l, (b, bt) in enumerate(zip(signals["b"], signals["b_teach"]))]
        updates = net.updates_from_deltas(cache, deltas)
        if self.recurrent and self.recurrent_lr > 0:
            for z, u, b_pre in zip(self.recurrent_weights, signals["drive"], signals["b_pre"]):
                z += self.recurrent_lr * u.T @ b_pre
        if self.learn_feedback:
            updates = updates + [u.clone() for u in updates[1 : net.n_layers]]
        return loss, updates


@torch.no_grad()
def linearised_burst_changes(rule: Burstprop, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """First-order approximation of the teacher's effect Bbar_l^t - Bbar_l, layers 1..L.

    At the output Bbar_L^t - Bbar_L = -p_0 N dL/da_L exactly; going down,

        Bbar_l^t - Bbar_l  ~  p_l (1 - p_l) * Ebar_l (1 - Ebar_l) * (B_{l+1} (Bbar^t - Bbar)_{l+1}),

    which is backprop's delta_l computed through B, times -p_0 N and a positive gain
    p_l (1 - p_l) per unit. Exact in the limit of a weak teacher.
    """
    net = rule.net
    cache = net.forward_with_cache(x)
    signals = rule.burst_signals(cache, y)
    changes = [-rule.p_baseline * x.shape[0] * net.output_error(cache.output, y)]
    for l in range(net.n_layers - 2, -1, -1):
        e, p = signals["e"][l], signals["p"][l]
        changes.insert(0, p * (1 - p) * e * (1 - e) * (changes[0] @ rule.feedback[l]))
    return changes


@torch.no_grad()
def hidden_update_angles(rule: LearningRule, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Degrees between each hidden layer's weight update (rule) and backprop's gradient.

    For :class:`Burstprop` the recurrent weights are left untouched.
    """
    recurrent_lr = getattr(rule, "recurrent_lr", None)
    if recurrent_lr is not None:
        rule.recurrent_lr = 0.0
    try:
        _, ours = rule.compute_updates(x, y)
    finally:
        if recurrent_lr is not None:
            rule.recurrent_lr = recurrent_lr
    _, grads = backprop_gradients(rule.net, x, y)
    n_hidden = rule.net.n_layers - 1
    return [angle_between(u, g) for u, g in zip(ours[:n_hidden], grads[:n_hidden])]


def backprop_equivalent_sgd(lr: float, weight_decay: float = 0.0) -> tuple[float, float]:
    """SGD learning rate and weight decay under which burstprop steps like backprop at ``lr``.

    Burstprop's output update is p_0 times the gradient, so it runs at lr / p_0. torch's SGD
    multiplies the weight decay by the learning rate, so the decay becomes weight_decay * p_0:
    the weights then shrink by the same lr * weight_decay per step as backprop's.
    """
    if lr <= 0 or weight_decay < 0:
        raise ValueError(f"need lr > 0 and weight_decay >= 0, got {lr} and {weight_decay}")
    return lr / P_BASELINE, weight_decay * P_BASELINE


GAP_BENCHMARK = REPO_ROOT / "benchmarks" / "results" / "bursts_burstprop_gap.json"  # checkout, else the wheel's copy
GAP_BENCHMARK_RULES = ("BP", "Burstprop, learned Y", "Burstprop, fixed Y")


def read_gap_benchmark(path: str | Path = GAP_BENCHMARK) -> dict:
    """The committed result of ``benchmarks/bursts_burstprop_gap.py``: its ``settings`` and, per
    rule, ``summary[rule]`` with the chosen ``lr``, ``test_per_seed``, ``test_mean``, ``test_sd``
    and ``gap_points`` (mean test accuracy minus backprop's, in points)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no burstprop benchmark result at {path}; run benchmarks/bursts_burstprop_gap.py")
    record = json.loads(path.read_text())
    missing = [rule for rule in GAP_BENCHMARK_RULES if rule not in record.get("summary", {})]
    if missing:
        raise ValueError(f"{path} has no result for {missing}; rerun benchmarks/bursts_burstprop_gap.py")
    return record


def run_mnist_burstprop(
    dataset: str = "mnist",
    *,
    hidden: tuple[int, ...] = HIDDEN,
    epochs: int = 100,
    batch_size: int = PAPER_BATCH_SIZE,
    lr: float = 0.2,
    momentum: float = MOMENTUM,
    weight_decay: float = 1e-4,
    init_range: float = 0.1,
    feedback_scale: float = 0.3,
    rules: tuple[str, ...] = ("BP", "FA", "Burstprop", "Burstprop (learned Y)"),
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, History]:
    """Train the same sigmoid network with backprop, feedback alignment and burstprop.

    From the authors' script (:data:`AUTHORS_MNIST_SCRIPT`): hidden layers of 500, batch 32,
    momentum 0.8, output burst probability 0.2 and learned recurrent weights Z. Ours: two hidden
    layers (as in the paper's Extended Data Fig. 6; the script defaults to three), weights
    uniform in [-0.1, 0.1], feedback in [-0.3, 0.3], weight decay 1e-4 (which the learned
    feedback needs), learning rate ``lr`` and decay for backprop and feedback alignment, and
    :func:`backprop_equivalent_sgd` of them for burstprop, with ``hidden_lr_scale`` 4. The default
    ``lr`` is the rate ``benchmarks/bursts_burstprop_gap.py`` chose on a validation split for
    backprop and for learned feedback on 784-500-10 (Fashion-MNIST, 10 epochs). Use
    ``dataset="fashion-mnist"`` for Fashion-MNIST. Runs on the GPU when there is one.
    Returns one History per rule, recording also the angle between each hidden layer's
    update and backprop's (``update_angle_l``) on 1,000 training examples.
    """
    from .backprop import Backprop
    from .feedback_alignment import FeedbackAlignment

    known = ("BP", "FA", "Burstprop", "Burstprop (learned Y)")
    unknown = [r for r in rules if r not in known]
    if unknown:
        raise ValueError(f"unknown rules {unknown}; choose from {known}")
    device = choose_device(device)
    data = load(dataset)
    probe_x, probe_y = data[0][:1000], data[1][:1000]

    def angles(epoch: int, rule: LearningRule) -> dict[str, float]:
        where = rule.net.weights[0].device
        values = hidden_update_angles(rule, probe_x.to(where), probe_y.to(where))
        return {f"update_angle_{l + 1}": v for l, v in enumerate(values)}

    histories = {}
    for name in rules:
        net = SigmoidMLP([data[0].shape[1], *hidden, 10], init_range=init_range, seed=seed)
        if name == "BP":
            rule, (rate, decay) = Backprop(net), (lr, weight_decay)
        elif name == "FA":
            rule, (rate, decay) = FeedbackAlignment(net, scale=feedback_scale, seed=seed + 1), (lr, weight_decay)
        else:
            rule = Burstprop(net, learn_feedback=name.endswith("(learned Y)"), feedback_scale=feedback_scale,
                             recurrent=True, hidden_lr_scale=4.0, seed=seed + 1)
            rate, decay = backprop_equivalent_sgd(lr, weight_decay)
        histories[name] = fit(rule, data, epochs=epochs, batch_size=batch_size, lr=rate, momentum=momentum,
                              weight_decay=decay, seed=seed, device=device, progress=progress,
                              on_epoch_end=angles)
    return histories
