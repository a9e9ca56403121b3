"""The training loop every chapter shares: seeding, device choice, progress, history.

A learning rule is any object with

* ``net``: the network it trains (its ``loss(output, y)`` scores predictions),
* ``parameters()``: the tensors the optimiser changes,
* ``compute_updates(x, y) -> (loss, updates)``: one descent direction per parameter
  (for backprop the gradient; for other rules their stand-in for it),
* ``predict(x)``: the network's output.

``fit`` writes each update into ``p.grad`` and lets a standard torch optimiser
take the step, so every rule is trained by the same code. A rule may also define
``train_step(x, y, lr) -> loss``, the same plain SGD step applied by the rule itself
(e.g. in place, on the entries that change); ``fit`` uses it for plain SGD.
"""

from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite, or grew far above its starting value."""


# A batch loss this many times its first value (or 1, if larger) means training diverged.
DIVERGENCE_FACTOR = 100.0

SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1: what numpy's and torch's generators all accept


def check_seed(seed, what: str = "seed") -> int:
    """``seed`` if it is an integer in [0, 2**32); else a one-line error naming ``what``."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{what} must be an integer from 0 to 2**32 - 1, got {seed!r}")
    return int(seed)


class DeviceUnavailableError(RuntimeError):
    """A device was requested that this machine does not have."""


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The GPU when one is present and ``device`` is None or "auto"; else the device named."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(f"unsupported device {device!r}; use 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device 'cuda' was requested but PyTorch sees no GPU (torch.cuda.is_available() is False)"
        )
    if device.type not in ("cpu", "cuda"):
        raise DeviceUnavailableError(f"unsupported device {str(device)!r}; use 'cpu' or 'cuda'")
    return device


class LearningRule:
    """Base class: trains ``net`` with the updates ``compute_updates`` returns."""

    name = "rule"

    def __init__(self, net: torch.nn.Module):
        self.net = net

    def parameters(self) -> list[torch.Tensor]:
        return list(self.net.parameters())

    def compute_updates(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must define compute_updates")

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def to(self, device: torch.device) -> "LearningRule":
        """Move the network (and any tensors the rule owns) to ``device``."""
        self.net.to(device)
        return self


class ReadoutOnly(LearningRule):
    """The readout-only control: ``rule`` with every layer but the last frozen at its start.

    Only the output layer's weight and bias W_L, b_L learn, with the update ``rule``
    computes for them; the hidden layers keep their initial random weights, so the
    network is a linear readout (softmax regression) of fixed random features.
    Lillicrap et al. 2016 call this "shallow" learning. A rule "learns" only if it
    beats this control on the same network, data and budget.
    """

    def __init__(self, rule: LearningRule):
        super().__init__(rule.net)
        weights, biases = getattr(rule.net, "weights", None), getattr(rule.net, "biases", None)
        if weights is None or len(weights) < 2:
            raise ValueError("ReadoutOnly needs a network with at least one hidden layer (net.weights of length >= 2)")
        self.rule = rule
        self.name = f"{getattr(rule, 'name', 'rule')} readout only"
        readout = [weights[-1]] + ([biases[-1]] if biases is not None and len(biases) else [])
        readout_ids = {id(p) for p in readout}
        self.trained = [i for i, p in enumerate(rule.parameters()) if id(p) in readout_ids]

    def parameters(self) -> list[torch.Tensor]:
        params = self.rule.parameters()
        return [params[i] for i in self.trained]

    def compute_updates(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss, updates = self.rule.compute_updates(x, y)
        return loss, [updates[i] for i in self.trained]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.rule.predict(x)

    def to(self, device: torch.device) -> "ReadoutOnly":
        self.rule.to(device)
        return self


@dataclass
class History:
    """Per-epoch metrics; epoch 0 is the untrained network."""

    epochs: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    wall_time: float = 0.0

    def log(self, epoch: int, values: dict[str, float]) -> None:
        if not self.epochs or self.epochs[-1] != epoch:
            self.epochs.append(epoch)
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r}; recorded: {sorted(self.metrics)}")
        return self.metrics[key]

    def final(self, key: str) -> float:
        return self[key][-1]

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "metrics": self.metrics, "wall_time": self.wall_time}


@torch.no_grad()
def evaluate(rule: LearningRule, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Mean loss and (for class labels) accuracy of the rule's predictions on (x, y)."""
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out = rule.predict(xb)
        total_loss += float(rule.net.loss(out, yb)) * len(xb)
        if yb.dtype == torch.int64:
            correct += int((out.argmax(dim=1) == yb).sum())
    result = {"loss": total_loss / len(x)}
    if y.dtype == torch.int64:
        result["accuracy"] = correct / len(x)
    return result


def make_optimizer(params: list[torch.Tensor], name: str, lr: float, momentum: float, weight_decay: float):
    if lr <= 0 or not math.isfinite(lr):
        raise ValueError(f"learning rate must be positive and finite, got {lr}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adam'")


def check_data(data, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``, checked: tensors, non-empty sets of matching
    lengths, finite float inputs (of ``dtype``, the network's, when given)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 4):
        raise ValueError("data must be (x_train, y_train, x_test, y_test), as dendnotes.data.load returns")
    for name, tensor in zip(("x_train", "y_train", "x_test", "y_test"), data):
        if not isinstance(tensor, torch.Tensor):
            hint = "; convert it with torch.from_numpy" if isinstance(tensor, np.ndarray) else ""
            raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}{hint}")
    x_train, y_train, x_test, y_test = data
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{name} set has {x.shape[0]} inputs but {y.shape[0]} labels")
        if x.shape[0] == 0:
            raise ValueError(f"the {name} set is empty")
        if not x.is_floating_point() or (dtype is not None and x.dtype != dtype):
            wanted = dtype or "a float type"
            raise ValueError(f"x_{name} is {x.dtype} but the network computes in {wanted}; convert it with .to({wanted})")
        for part, values in (("x", x), ("y", y)):
            bad = ~torch.isfinite(values) if values.is_floating_point() else None
            if bad is not None and bad.any():
                first = int(bad.reshape(len(values), -1).any(dim=1).nonzero()[0])
                raise ValueError(f"{part}_{name} holds {int(bad.sum())} NaN or infinite values (the first in "
                                 f"example {first}); remove or replace them before training")
    return x_train, y_train, x_test, y_test


def check_fit_arguments(epochs, batch_size, lr, momentum, weight_decay, seed) -> None:
    """One-line errors for ``fit``'s numeric arguments of the wrong type or range."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
    check_seed(seed)


def fit(
    rule: LearningRule,
    data,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
    on_epoch_end: Callable[[int, LearningRule], dict[str, float] | None] | None = None,
    on_batch_end: Callable[[LearningRule, torch.Tensor], None] | None = None,
    evaluate_train: bool = True,
    eval_batch_size: int = 1000,
    resume: History | None = None,
    after_epoch: Callable[[int, History, LearningRule], None] | None = None,
) -> History:
    """Train ``rule`` for ``epochs`` passes over shuffled minibatches; return the history.

    Records train/test loss and accuracy after every epoch (and before the first),
    plus whatever ``on_epoch_end(epoch, rule)`` returns. ``on_batch_end(rule, y)``
    runs after each step (``y``: the batch's labels), for metrics gathered during
    training; ``evaluate_train=False`` skips the pass over the training set, where
    predicting is expensive (spiking networks). Raises TrainingDivergedError as soon
    as a batch loss is NaN or infinite or more than ``DIVERGENCE_FACTOR`` times its
    first value (or 1, if larger). ``after_epoch(epoch, history, rule)`` runs after each
    epoch is recorded (e.g. to save a checkpoint). ``resume``: the history of an interrupted
    run of the same call, with the rule restored to its state after that history's last
    epoch: training goes on from there as if never interrupted (the shuffling generator is
    advanced past the epochs done).
    """
    check_fit_arguments(epochs, batch_size, lr, momentum, weight_decay, seed)
    device = choose_device(device)
    first = next(iter(rule.parameters()), None)
    x_train, y_train, x_test, y_test = (t.to(device) for t in check_data(data, getattr(first, "dtype", None)))
    rule.to(device)
    params = rule.parameters()
    opt = make_optimizer(params, optimizer, lr, momentum, weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = resume if resume is not None else History()
    done = history.epochs[-1] if history.epochs else None
    plain_sgd = optimizer == "sgd" and momentum == 0 and weight_decay == 0
    train_step = getattr(rule, "train_step", None) if plain_sgd else None

    def record(epoch: int) -> None:
        values = {}
        if evaluate_train:
            values |= {f"train_{k}": v for k, v in evaluate(rule, x_train, y_train, eval_batch_size).items()}
        values |= {f"test_{k}": v for k, v in evaluate(rule, x_test, y_test, eval_batch_size).items()}
        if on_epoch_end is not None:
            values |= on_epoch_end(epoch, rule) or {}
        history.log(epoch, values)

    start = time.perf_counter() - history.wall_time
    if done is None:
        record(0)
    n_batches = math.ceil(len(x_train) / batch_size)
    loss_limit = None
    bar = tqdm(total=epochs * n_batches, desc=getattr(rule, "name", "training"), disable=not progress)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x_train), generator=generator).to(device)
        if done is not None and epoch <= done:
            bar.update(n_batches)
            continue
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            if train_step is not None:
                loss = float(train_step(x_train[idx], y_train[idx], lr))
            else:
                loss, updates = rule.compute_updates(x_train[idx], y_train[idx])
                loss = float(loss)
            if loss_limit is None and math.isfinite(loss):
                loss_limit = DIVERGENCE_FACTOR * max(abs(loss), 1.0)
            if not math.isfinite(loss) or loss > loss_limit:
                bar.close()
                above = f", above {loss_limit:.4g} ({DIVERGENCE_FACTOR:g} x its first value)" if loss_limit else ""
                raise TrainingDivergedError(
                    f"{getattr(rule, 'name', 'training')} diverged at epoch {epoch}, batch {b + 1}: "
                    f"loss is {loss:.4g}{above}. Try a smaller learning rate (lr={lr})."
                )
            if train_step is None:
                for p, u in zip(params, updates, strict=True):
                    p.grad = u
                opt.step()
            if on_batch_end is not None:
                on_batch_end(rule, y_train[idx])
            bar.update()
        record(epoch)
        history.wall_time = time.perf_counter() - start
        if after_epoch is not None:
            after_epoch(epoch, history, rule)
        bar.set_postfix(test_acc=history.metrics.get("test_accuracy", [float("nan")])[-1])
    bar.close()
    history.wall_time = time.perf_counter() - start
    return history
