"""The training loop every chapter shares: seeding, device choice, progress, history.

A learning rule is any object with

* ``net``: the network it trains (its ``loss(output, y)`` scores predictions),
* ``parameters()``: the tensors the optimiser changes,
* ``compute_updates(x, y) -> (loss, updates)``: one descent direction per parameter
  (for backprop the gradient; for other rules their stand-in for it),
* ``predict(x)``: the network's output.

``fit`` writes each update into ``p.grad`` and lets a standard torch optimiser
take the step, so every rule is trained by the same code.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


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
    device = torch.device(device)
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


def check_data(data) -> tuple[torch.Tensor, ...]:
    if not (isinstance(data, (tuple, list)) and len(data) == 4):
        raise ValueError("data must be (x_train, y_train, x_test, y_test), as dendnotes.data.load returns")
    x_train, y_train, x_test, y_test = data
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{name} set has {x.shape[0]} inputs but {y.shape[0]} labels")
    return x_train, y_train, x_test, y_test


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
) -> History:
    """Train ``rule`` for ``epochs`` passes over shuffled minibatches; return the history.

    Records train/test loss and accuracy after every epoch (and before the first),
    plus whatever ``on_epoch_end(epoch, rule)`` returns. ``on_batch_end(rule, y)``
    runs after each step (``y``: the batch's labels), for metrics gathered during
    training; ``evaluate_train=False`` skips the pass over the training set, where
    predicting is expensive (spiking networks). Raises TrainingDivergedError as soon
    as a batch loss is NaN or infinite.
    """
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    device = choose_device(device)
    x_train, y_train, x_test, y_test = (t.to(device) for t in check_data(data))
    rule.to(device)
    params = rule.parameters()
    opt = make_optimizer(params, optimizer, lr, momentum, weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()

    def record(epoch: int) -> None:
        values = {}
        if evaluate_train:
            values |= {f"train_{k}": v for k, v in evaluate(rule, x_train, y_train, eval_batch_size).items()}
        values |= {f"test_{k}": v for k, v in evaluate(rule, x_test, y_test, eval_batch_size).items()}
        if on_epoch_end is not None:
            values |= on_epoch_end(epoch, rule) or {}
        history.log(epoch, values)

    start = time.perf_counter()
    record(0)
    n_batches = math.ceil(len(x_train) / batch_size)
    bar = tqdm(total=epochs * n_batches, desc=getattr(rule, "name", "training"), disable=not progress)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss, updates = rule.compute_updates(x_train[idx], y_train[idx])
            loss = float(loss)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDivergedError(
                    f"{getattr(rule, 'name', 'training')} diverged at epoch {epoch}, batch {b + 1}: "
                    f"loss is {loss}. Try a smaller learning rate (lr={lr})."
                )
            for p, u in zip(params, updates, strict=True):
                p.grad = u
            opt.step()
            if on_batch_end is not None:
                on_batch_end(rule, y_train[idx])
            bar.update()
        record(epoch)
        bar.set_postfix(test_acc=history.metrics.get("test_accuracy", [float("nan")])[-1])
    bar.close()
    history.wall_time = time.perf_counter() - start
    return history
