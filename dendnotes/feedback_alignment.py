"""Learning without weight transport: feedback alignment and its relatives.

Backprop sends the output error down through the transposed forward weights,
delta_{l-1} = (delta_l W_l) * f'(a_{l-1}) (row-vector form of W^T delta). The
rules here keep the forward pass and the local updates dW_l = delta_l^T h_{l-1}
and change only the matrix that carries the error down:

* feedback alignment, FA (Lillicrap et al. 2016): a fixed random matrix B_l,
  delta_{l-1} = (delta_l B_l^T) * f'(a_{l-1});
* direct feedback alignment, DFA (Nokland 2016): every hidden layer gets the
  output error e straight from a fixed random matrix, delta_l = (e D_l) * f'(a_l);
* sign symmetry, SS (Liao, Leibo & Poggio 2016): the feedback has the signs of
  W_l but not its magnitudes, B_l^T = mean|W_l| sign(W_l);
* Kolen-Pollack, KP (Kolen & Pollack 1994; Akrout et al. 2019): B_l is learned
  with the same update as W_l^T, and both decay alike, so W_l - B_l^T shrinks
  by (1 - lr * weight_decay) every SGD step.

Conventions. The feedback matrix of layer l is stored as M_l = B_l^T, with the
shape (n_l, n_{l-1}) of W_l, so that ``propagate_deltas`` uses it where backprop
uses W_l; ``feedback[k]`` belongs to layer l = k + 2 (layer 1 sends no error
further down). DFA's ``feedback[k]`` is D_{k+1} of shape (n_L, n_{k+1}).
Random feedback is uniform in [-r, r] with r = 1/sqrt(n_{l-1}), the range of
the forward weights at initialisation (``scale`` overrides r: Lillicrap et al.
use r = 0.5 in their linear task), drawn from its own seeded generator.

Diagnostics shared by all rules: ``update_angles`` (rule's weight updates vs
backprop's on the same batch) and ``weight_feedback_angles`` (forward path vs
feedback path into each hidden layer).
"""

from __future__ import annotations

import math

import torch

from .backprop import Backprop, backprop_gradients, propagate_deltas
from .data import load
from .mlp import MLP, ForwardCache, activation_derivative
from .training import History, LearningRule, choose_device, fit

# Lillicrap et al. (2016), linear task: y = T x with x ~ N(0, I), T ~ U[-1, 1]^(10 x 30),
# a 30-20-10 linear network with W ~ U[-0.01, 0.01] and B ~ U[-0.5, 0.5], loss 0.5 |e|^2.
LINEAR_SIZES = (30, 20, 10)
LINEAR_WEIGHT_RANGE = 0.01
LINEAR_FEEDBACK_RANGE = 0.5

# Lillicrap et al. (2016), MNIST: 784-1000-10 sigmoid network, learning rate 1e-3 and
# weight decay 1e-6 (see run_mnist_comparison for how we use them with minibatches).
MNIST_HIDDEN = 1000
MNIST_LR_PER_EXAMPLE = 1e-3
MNIST_WEIGHT_DECAY = 1e-6


# ---------------------------------------------------------------------------
# feedback matrices
# ---------------------------------------------------------------------------


def random_feedback(
    shapes: list[tuple[int, int]],
    *,
    scale: float | None = None,
    sparsity: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Fixed random matrices, entries uniform in [-r, r] (r = 1/sqrt(shape[1]) or ``scale``).

    With ``sparsity`` p, each entry is zeroed with probability p and the others are
    multiplied by 1/(1 - p), so each entry keeps its expected value, as in dropout
    (Guerguiev et al. 2017 used 80% zeros, the rest x5).
    """
    if scale is not None and not scale > 0:
        raise ValueError(f"feedback scale must be positive, got {scale}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    generator = torch.Generator().manual_seed(seed)
    matrices = []
    for rows, cols in shapes:
        r = scale if scale is not None else cols**-0.5
        m = (torch.rand(rows, cols, generator=generator, dtype=torch.float64) * 2 - 1) * r
        if sparsity > 0:
            keep = torch.rand(rows, cols, generator=generator, dtype=torch.float64) >= sparsity
            m = m * keep / (1 - sparsity)
        matrices.append(m.to(dtype=dtype, device=device))
    return matrices


def check_feedback(feedback: list[torch.Tensor], shapes: list[tuple[int, int]]) -> None:
    """Raise a clear error unless ``feedback`` holds one matrix of each shape."""
    got = [tuple(m.shape) for m in feedback]
    if got != [tuple(s) for s in shapes]:
        raise ValueError(f"feedback matrices must have shapes {shapes}, got {got}")


def fixed_feedback(net: MLP, shapes, feedback, *, scale, sparsity, seed) -> list[torch.Tensor]:
    """Copies of the given feedback matrices (checked against ``shapes``), or random ones."""
    if feedback is None:
        w = net.weights[0]
        feedback = random_feedback(shapes, scale=scale, sparsity=sparsity, seed=seed, dtype=w.dtype, device=w.device)
    check_feedback(feedback, shapes)
    return [m.detach().clone() for m in feedback]


def sign_feedback(w: torch.Tensor) -> torch.Tensor:
    """mean|W| sign(W): the best least-squares fit c sign(W) to W (Liao et al. 2016)."""
    return w.abs().mean() * torch.sign(w)


# ---------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------


class FeedbackRule(LearningRule):
    """A rule that sends errors down through matrices M_l in place of W_l.

    delta_L = e,  delta_{l-1} = (delta_l M_l) * f'(a_{l-1}),  dW_l = delta_l^T h_{l-1}.
    Subclasses say what M_2..M_L are (``backward_weights``).
    """

    def backward_weights(self) -> list[torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must define backward_weights")

    def deltas(self, cache: ForwardCache, output_error: torch.Tensor) -> list[torch.Tensor]:
        # propagate_deltas reads entries 1..L-1 of its list; entry 0 is never used.
        backward = [self.net.weights[0], *self.backward_weights()]
        return propagate_deltas(self.net, cache, output_error, backward)

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        cache = self.net.forward_with_cache(x)
        loss = self.net.loss(cache.output, y)
        deltas = self.deltas(cache, self.net.output_error(cache.output, y))
        return loss, self.net.updates_from_deltas(cache, deltas)

    def alignment_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(W_l, M_l) for l = 2..L: the forward and feedback paths into hidden layer l - 1."""
        return list(zip(self.net.weights[1:], self.backward_weights()))


class FeedbackAlignment(FeedbackRule):
    """Feedback alignment (Lillicrap et al. 2016): errors go down through fixed random B_l.

    ``feedback`` gives the matrices M_l = B_l^T (shapes of W_2..W_L) explicitly;
    otherwise they are drawn by :func:`random_feedback` with ``scale``, ``sparsity``
    and ``seed``.
    """

    name = "FA"

    def __init__(
        self,
        net: MLP,
        *,
        scale: float | None = None,
        sparsity: float = 0.0,
        seed: int = 0,
        feedback: list[torch.Tensor] | None = None,
    ):
        super().__init__(net)
        shapes = [tuple(w.shape) for w in net.weights[1:]]
        self.feedback = fixed_feedback(net, shapes, feedback, scale=scale, sparsity=sparsity, seed=seed)

    def backward_weights(self) -> list[torch.Tensor]:
        return self.feedback

    def to(self, device) -> "FeedbackAlignment":
        super().to(device)
        self.feedback = [m.to(device) for m in self.feedback]
        return self


class SignSymmetry(FeedbackRule):
    """Sign symmetry (Liao, Leibo & Poggio 2016): M_l = mean|W_l| sign(W_l), read from W each step.

    Only the signs of the forward weights travel back; the single scale per layer
    (the mean magnitude) keeps the error signal about as large as backprop's.
    """

    name = "SS"

    def backward_weights(self) -> list[torch.Tensor]:
        return [sign_feedback(w.detach()) for w in self.net.weights[1:]]


class KolenPollack(FeedbackAlignment):
    """Kolen-Pollack learning (Kolen & Pollack 1994; Akrout et al. 2019).

    Errors go down through M_l = B_l^T as in FA, but M_l is a parameter with the same
    update as W_l: dM_l = dW_l = delta_l^T h_{l-1}. Trained by ``fit`` with SGD and
    ``weight_decay`` lambda, W and M then take identical steps apart from the decay, so

        W_l - M_l  <-  (1 - lr * lambda) (W_l - M_l)      every step (plain SGD),

    whatever the data: the feedback converges to W^T at a rate set by the decay
    alone (without decay the difference stays as it started). With momentum the
    difference still decays, through the momentum recursion; Adam breaks the
    identity because it rescales W and M differently.
    """

    name = "KP"

    def parameters(self) -> list[torch.Tensor]:
        return list(self.net.parameters()) + self.feedback

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        loss, updates = super().compute_updates(x, y)
        weight_updates = updates[1 : self.net.n_layers]  # dW_2..dW_L
        return loss, updates + [u.clone() for u in weight_updates]


class DirectFeedbackAlignment(LearningRule):
    """Direct feedback alignment (Nokland 2016): delta_l = (e D_l) * f'(a_l) for hidden l.

    D_l (shape n_L x n_l) is fixed and random, drawn like FA's feedback (entries in
    [-r, r] with r = 1/sqrt(n_l) unless ``scale`` is given), so that with one hidden
    layer DFA and FA are the same rule. ``feedback`` gives D_1..D_{L-1} explicitly.
    """

    name = "DFA"

    def __init__(
        self,
        net: MLP,
        *,
        scale: float | None = None,
        sparsity: float = 0.0,
        seed: int = 0,
        feedback: list[torch.Tensor] | None = None,
    ):
        super().__init__(net)
        shapes = [(net.sizes[-1], n) for n in net.sizes[1:-1]]
        self.feedback = fixed_feedback(net, shapes, feedback, scale=scale, sparsity=sparsity, seed=seed)

    @torch.no_grad()
    def compute_updates(self, x: torch.Tensor, y: torch.Tensor):
        net = self.net
        cache = net.forward_with_cache(x)
        loss = net.loss(cache.output, y)
        e = net.output_error(cache.output, y)
        deltas = [
            (e @ d) * activation_derivative(net.activation, a)
            for d, a in zip(self.feedback, cache.pre[:-1])
        ]
        return loss, net.updates_from_deltas(cache, deltas + [e])

    def alignment_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(W_L W_{L-1} ... W_{l+1}, D_l) for hidden l: the forward path from layer l to the
        output (ignoring the nonlinearities) and the direct feedback into layer l."""
        pairs = []
        path = self.net.weights[-1]
        for l in range(self.net.n_layers - 2, -1, -1):
            pairs.insert(0, (path, self.feedback[l]))
            path = path @ self.net.weights[l]
        return pairs

    def to(self, device) -> "DirectFeedbackAlignment":
        super().to(device)
        self.feedback = [m.to(device) for m in self.feedback]
        return self


RULES = {
    "BP": Backprop,
    "FA": FeedbackAlignment,
    "DFA": DirectFeedbackAlignment,
    "SS": SignSymmetry,
    "KP": KolenPollack,
}


def make_rule(name: str, net: MLP, seed: int = 0) -> LearningRule:
    """The rule called ``name`` (a key of RULES) training ``net``; ``seed`` draws its feedback."""
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; choose one of {list(RULES)}")
    if name in ("FA", "DFA", "KP"):
        return RULES[name](net, seed=seed)
    return RULES[name](net)


# ---------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------


def angle_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors read as flat vectors (NaN if either is zero)."""
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    norms = float(a.norm() * b.norm())
    if norms == 0.0:
        return math.nan
    cosine = max(-1.0, min(1.0, float(a @ b) / norms))
    return math.degrees(math.acos(cosine))


@torch.no_grad()
def update_angles(rule: LearningRule, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Degrees between the rule's dW_l and backprop's dL/dW_l on the batch (x, y), l = 1..L.

    0 means the rule moves W_l exactly as backprop would; below 90 the rule still
    descends the loss (for a small enough step).
    """
    n = rule.net.n_layers
    _, ours = rule.compute_updates(x, y)
    _, gradients = backprop_gradients(rule.net, x, y)
    return [angle_between(u, g) for u, g in zip(ours[:n], gradients[:n])]


@torch.no_grad()
def weight_feedback_angles(rule: LearningRule) -> list[float]:
    """Degrees between the forward and the feedback path into each hidden layer l = 1..L-1.

    FA, SS and KP: W_{l+1} vs M_{l+1} = B_{l+1}^T. DFA: the product W_L ... W_{l+1}
    vs D_l (both map layer l to the output). Backprop: 0 by definition.
    """
    if isinstance(rule, Backprop):
        return [0.0] * (rule.net.n_layers - 1)
    if not hasattr(rule, "alignment_pairs"):
        raise TypeError(f"{type(rule).__name__} has no feedback matrices to compare with W")
    return [angle_between(w, m) for w, m in rule.alignment_pairs()]


@torch.no_grad()
def feedback_mismatch(rule: LearningRule) -> list[float]:
    """Frobenius norm ||W - M|| per hidden layer, for the pairs of ``weight_feedback_angles``."""
    if isinstance(rule, Backprop):
        return [0.0] * (rule.net.n_layers - 1)
    if not hasattr(rule, "alignment_pairs"):
        raise TypeError(f"{type(rule).__name__} has no feedback matrices to compare with W")
    return [float((w - m).norm()) for w, m in rule.alignment_pairs()]


def alignment_recorder(x: torch.Tensor, y: torch.Tensor):
    """An ``on_epoch_end`` callback for ``fit`` recording, for every hidden layer l,
    ``update_angle_l`` (on the fixed probe batch x, y), ``weight_feedback_angle_l``
    and ``feedback_mismatch_l``."""

    def record(epoch: int, rule: LearningRule) -> dict[str, float]:
        device = rule.net.weights[0].device
        n_hidden = rule.net.n_layers - 1
        values = {}
        angles = update_angles(rule, x.to(device), y.to(device))[:n_hidden]
        for name, per_layer in (
            ("update_angle", angles),
            ("weight_feedback_angle", weight_feedback_angles(rule)),
            ("feedback_mismatch", feedback_mismatch(rule)),
        ):
            values |= {f"{name}_{l + 1}": v for l, v in enumerate(per_layer)}
        return values

    return record


# ---------------------------------------------------------------------------
# experiments
# ---------------------------------------------------------------------------


def linear_teacher_data(n_train: int = 2000, n_test: int = 500, seed: int = 0):
    """Lillicrap et al.'s linear task: x ~ N(0, I_30), y = T x with T ~ U[-1, 1]^(10 x 30).

    Returns (x_train, y_train, x_test, y_test) as float32 tensors, like ``data.load``.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need at least one training and one test example, got {n_train}, {n_test}")
    generator = torch.Generator().manual_seed(seed)
    n_in, _, n_out = LINEAR_SIZES
    teacher = torch.rand(n_out, n_in, generator=generator) * 2 - 1
    x = torch.randn(n_train + n_test, n_in, generator=generator)
    y = x @ teacher.T
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def linear_network(seed: int = 0) -> MLP:
    """The 30-20-10 linear network without biases, W ~ U[-0.01, 0.01], squared-error loss."""
    return MLP(
        list(LINEAR_SIZES),
        activation="linear",
        loss="mse",
        bias=False,
        init_range=LINEAR_WEIGHT_RANGE,
        seed=seed,
    )


def run_mnist_comparison(
    dataset: str = "mnist",
    rules: tuple[str, ...] = tuple(RULES),
    *,
    hidden: int = MNIST_HIDDEN,
    activation: str = "sigmoid",
    epochs: int = 100,
    batch_size: int = 32,
    lr: float | None = None,
    weight_decay: float = MNIST_WEIGHT_DECAY,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, History]:
    """Train 784-``hidden``-10 networks with each rule from the same initial weights.

    Defaults follow Lillicrap et al. (2016) on MNIST: 1,000 sigmoid hidden units,
    learning rate 1e-3 per example and weight decay 1e-6. Our loss is the mean over a
    minibatch, so a per-example rate of 1e-3 becomes ``lr = 1e-3 * batch_size`` unless
    ``lr`` is given. Every history also records the alignment angles of
    :func:`alignment_recorder` on 1,000 training examples. Use ``dataset="fashion-mnist"``
    for Fashion-MNIST. Runs on the GPU when there is one (``device=None``).
    """
    unknown = [name for name in rules if name not in RULES]
    if unknown:
        raise ValueError(f"unknown rules {unknown}; choose from {list(RULES)}")
    device = choose_device(device)
    data = load(dataset)
    lr = MNIST_LR_PER_EXAMPLE * batch_size if lr is None else lr
    probe = alignment_recorder(data[0][:1000], data[1][:1000])
    histories = {}
    for name in rules:
        net = MLP([data[0].shape[1], hidden, 10], activation=activation, seed=seed)
        histories[name] = fit(
            make_rule(name, net, seed=seed + 1),
            data,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            device=device,
            progress=progress,
            on_epoch_end=probe,
        )
    return histories
