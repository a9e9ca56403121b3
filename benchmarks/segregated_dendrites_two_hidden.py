"""Why does the spiking 784-500-100-10 network stall at 18-20 % test error on some seeds?

The depth benchmark (``segregated_dendrites_depth.py``) trains 784-500-100-10 the paper's way for 20
epochs of mnist-5k: seeds 1 and 4 reach 9.9 and 9.5 % test error, seeds 0, 2 and 3 stall at 18-20 %.
This script trains the same networks (spiking, online, the paper's learning rates 0.23, 0.23, 0.12,
g_a = 0) and records after every epoch, on the 1,000 test images (steady state, as the benchmark):
the test error, the error on each digit class, and each output unit's mean somatic voltage on the
images of its own class. A class is "lost" when more than 90 % of its images are misclassified.
It also runs a few variants on seed 0 or on the stalled seeds 0, 2, 3 (784-500-10, the readout
alone, the authors' code's PSP kernel, smaller steps, smaller initial weights).

    python benchmarks/segregated_dendrites_two_hidden.py --epochs 6 --seeds 0 1 2 3 4
    python benchmarks/segregated_dendrites_two_hidden.py --epochs 20 --seeds 0 1 2 3 4 --variants 5 --all-seeds \
        --out benchmarks/results/segregated_dendrites_two_hidden_e20.json

write ``benchmarks/results/segregated_dendrites_two_hidden.json`` (and ``..._e20.json``); the findings are in
``segregated_dendrites_two_hidden.md`` beside it (written by hand from the JSON).
"""

from __future__ import annotations

import argparse
import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dendnotes.data import load
from dendnotes.files import write_json_atomically
from dendnotes.segregated_dendrites import PaperEvaluation, SegregatedDendrites, SegregatedNetwork, local_deltas
from dendnotes.training import fit

RESULTS = Path(__file__).parent / "results"
TWO_HIDDEN = [784, 500, 100, 10]
LOST = 0.9  # a class is lost when more than this fraction of its test images are misclassified
# The authors' code sums the PSP kernel over the last 10 ms only, 0.51 of its area: every filtered spike
# train is about 0.51 of the paper's. That network is the paper's (full kernel) with weights W and
# feedback weights Y 0.51 times the code's, weight steps 0.51^2 = 0.26 times as large and bias steps as large.
KERNEL_AREA_10MS = 0.51
STALLED = (0, 2, 3)  # the seeds that stall in the depth benchmark
PAPER_RATES = (0.23, 0.23, 0.12)


@dataclass(frozen=True)
class Variant:
    sizes: list
    learning_rates: tuple | None = None  # None: the paper's
    weight_scale: float = 1.0  # of the initial W and Y
    bias_step_scale: float = 1.0  # bias steps relative to the weight steps
    seeds: tuple | None = None  # None: --seeds


SCALED_RATES = tuple(KERNEL_AREA_10MS**2 * eta for eta in PAPER_RATES)
VARIANTS = {
    "784-500-100-10, the paper's settings": Variant(TWO_HIDDEN),
    "784-500-10, the paper's settings": Variant([784, 500, 10], seeds=(0,)),
    "784-500-100-10, readout only (0, 0, 0.12)": Variant(TWO_HIDDEN, (0.0, 0.0, 0.12), seeds=(0,)),
    "784-500-100-10, the authors' code's 10 ms kernel (W, Y x 0.51; weight steps x 0.26)": Variant(
        TWO_HIDDEN, SCALED_RATES, KERNEL_AREA_10MS, 1 / KERNEL_AREA_10MS**2, STALLED),
    "784-500-100-10, all steps x 0.26 only": Variant(TWO_HIDDEN, SCALED_RATES, seeds=STALLED),
    "784-500-100-10, initial W, Y x 0.51 only": Variant(TWO_HIDDEN, weight_scale=KERNEL_AREA_10MS, seeds=STALLED),
}


@torch.no_grad()
def class_report(net: SegregatedNetwork, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Test error (%), error per class, each output unit's mean voltage on its own class, lost classes."""
    output = net.steady_phase(x).soma[-1]
    predicted = output.argmax(dim=1)
    classes = range(net.sizes[-1])
    class_error = [float((predicted[y == c] != c).float().mean()) for c in classes]
    return {"test_error": round(100 * float((predicted != y).float().mean()), 2),
            "class_error": [round(e, 3) for e in class_error],
            "own_class_voltage": [round(float(output[y == c, c].mean()), 2) for c in classes],
            "lost": [c for c in classes if class_error[c] > LOST]}


def train(name: str, seed: int, epochs: int, data) -> dict:
    variant = VARIANTS[name]
    net = SegregatedNetwork(variant.sizes, seed=seed)
    with torch.no_grad():
        for w in [*net.weights, *net.feedback]:
            w.mul_(variant.weight_scale)
    rule = SegregatedDendrites(net, seed=seed, steady_test=True, learning_rates=variant.learning_rates)
    x_test, y_test = data[2], data[3]
    epochs_report = [class_report(net, x_test, y_test)]
    evaluation = PaperEvaluation(rule)
    hooks = evaluation.hooks()
    if variant.bias_step_scale != 1:
        def on_batch_end(rule, y):  # the rest of the bias step: the update applied (scale - 1) more times
            evaluation.on_batch_end(rule, y)
            with torch.no_grad():
                forward, target = rule.last_phases
                for bias, delta, scale in zip(net.biases, local_deltas(net, forward, target), rule.scales()):
                    bias.sub_((variant.bias_step_scale - 1) * scale * delta.mean(dim=0))
        hooks["on_batch_end"] = on_batch_end

    def after_epoch(epoch, history, rule):
        epochs_report.append(class_report(net, x_test, y_test))

    fit(rule, data, epochs=epochs, batch_size=1, lr=1, seed=seed, progress=False, after_epoch=after_epoch, **hooks)
    return {"variant": name, "seed": seed, "learning_rates": list(rule.learning_rates),
            "weight_scale": variant.weight_scale, "bias_step_scale": variant.bias_step_scale, "epochs": epochs_report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", type=int, nargs="+", default=list(range(len(VARIANTS))),
                        help="which variants to run (indices into VARIANTS)")
    parser.add_argument("--all-seeds", action="store_true", help="run every variant on --seeds")
    parser.add_argument("--out", type=Path, default=RESULTS / "segregated_dendrites_two_hidden.json")
    args = parser.parse_args()
    data = load("mnist-5k")
    chosen = [name for i, name in enumerate(VARIANTS) if i in args.variants]
    jobs = [(name, seed) for name in chosen
            for seed in (args.seeds if args.all_seeds or VARIANTS[name].seeds is None else VARIANTS[name].seeds)]
    record = {"epochs": args.epochs, "dataset": "mnist-5k", "mode": "spiking", "g_a": 0.0, "lost_above": LOST,
              "date": str(datetime.date.today()), "runs": []}
    for name, seed in jobs:
        run = train(name, seed, args.epochs, data)
        record["runs"].append(run)
        record["load_average"] = f"{os.getloadavg()[0]:.1f}"
        write_json_atomically(args.out, record, overwrite=True)
        print(name, "seed", seed, [(e["test_error"], e["lost"]) for e in run["epochs"][1:]], flush=True)


if __name__ == "__main__":
    main()
