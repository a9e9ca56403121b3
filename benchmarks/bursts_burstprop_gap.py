"""How far is rate burstprop from backprop on Fashion-MNIST, with learning rates chosen fairly?

    python benchmarks/bursts_burstprop_gap.py [--epochs 10] [--select-epochs 3] [--seeds 3]

Same sigmoid network (784-500-10, output sigmoid, squared error) and protocol for every rule:
batch 32, SGD with momentum 0.9, weight decay 1e-4, weights uniform in [-0.1, 0.1] (as in
chapter 6 and ``burstprop.run_mnist_burstprop``). Each rule's learning rate is chosen on a
validation split (the last 10,000 training images, held out of training) after
``--select-epochs`` epochs; then each rule trains on the other 50,000 images for ``--epochs``
epochs with ``--seeds`` seeds and is scored on the test set. Rules: backprop, burstprop with
learned feedback (Kolen-Pollack) and learned recurrent weights Z, and burstprop with fixed
feedback (and learned Z) at the learned-feedback rule's learning rate. Writes
``benchmarks/results/bursts_burstprop_gap.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
from pathlib import Path

from dendnotes import fit
from dendnotes.backprop import Backprop
from dendnotes.burstprop import MOMENTUM, P_BASELINE, PAPER_BATCH_SIZE, Burstprop, SigmoidMLP
from dendnotes.data import load

RESULTS = Path(__file__).resolve().parent / "results"
RATES = (0.03, 0.1, 0.3, 1.0)


def make(rule: str, seed: int):
    net = SigmoidMLP([784, 500, 10], init_range=0.1, seed=seed)
    if rule == "BP":
        return Backprop(net), 1.0
    learned = rule == "Burstprop, learned Y"
    return Burstprop(net, learn_feedback=learned, feedback_scale=0.3, recurrent=True, hidden_lr_scale=4.0,
                     seed=seed + 1), 1.0 / P_BASELINE


def train(rule: str, lr: float, data, epochs: int, seed: int) -> float:
    learner, scale = make(rule, seed)
    history = fit(learner, data, epochs=epochs, batch_size=PAPER_BATCH_SIZE, lr=lr * scale, momentum=MOMENTUM,
                  weight_decay=1e-4, seed=seed, progress=False)
    return history.final("test_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--select-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    x, y, x_test, y_test = load("fashion-mnist")
    fit_split = (x[:-10000], y[:-10000], x[-10000:], y[-10000:])
    test_split = (x[:-10000], y[:-10000], x_test, y_test)
    chosen, selection = {}, {}
    for rule in ("BP", "Burstprop, learned Y"):
        selection[rule] = {lr: train(rule, lr, fit_split, args.select_epochs, seed=0) for lr in RATES}
        chosen[rule] = max(selection[rule], key=selection[rule].get)
        print(rule, selection[rule], "->", chosen[rule], flush=True)
    chosen["Burstprop, fixed Y"] = chosen["Burstprop, learned Y"]
    final = {}
    for rule, lr in chosen.items():
        final[rule] = [train(rule, lr, test_split, args.epochs, seed) for seed in range(args.seeds)]
        print(rule, final[rule], flush=True)
    bp = statistics.mean(final["BP"])
    lines = [
        "# Burstprop against backprop on Fashion-MNIST, same network and protocol",
        "",
        f"Produced by `python benchmarks/bursts_burstprop_gap.py --epochs {args.epochs} --select-epochs "
        f"{args.select_epochs} --seeds {args.seeds}` on {datetime.date.today()} (CPU, {os.cpu_count()} cores, shared).",
        "784-500-10 sigmoid network, squared error, batch 32, momentum 0.9, weight decay 1e-4. Learning rate "
        f"(burstprop: divided by p_0 = {P_BASELINE}) chosen from {RATES} on 10,000 training images held out "
        f"of training, after {args.select_epochs} epochs, seed 0; fixed feedback uses learned feedback's rate.",
        "",
        "| rule | learning rate | validation accuracy per rate | test accuracy, mean +- sd over seeds | gap to BP (points) |",
        "|---|---:|---|---:|---:|",
    ]
    for rule, accuracies in final.items():
        mean, sd = statistics.mean(accuracies), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        tried = ", ".join(f"{lr}: {a:.1%}" for lr, a in selection.get(rule, {}).items()) or "(same as learned Y)"
        lines.append(f"| {rule} | {chosen[rule]} | {tried} | {mean:.2%} +- {sd:.2%} | {100 * (mean - bp):+.1f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bursts_burstprop_gap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
