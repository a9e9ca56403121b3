"""Run a named experiment at full scale and save its results as JSON.

    python -m dendnotes.reproduce --list
    python -m dendnotes.reproduce EXPERIMENT [--dataset NAME] [--epochs N] [--seed S]
                                  [--device cpu|cuda] [--out DIR]

Each experiment trains one learning rule and writes
``<out>/<experiment>__<dataset>__seed<S>.json`` holding the configuration, the
per-epoch history, the final test accuracy, the wall time, the hardware and the
package version. The file appears only when the run has finished: an interrupted
run leaves nothing behind. The GPU is used when one is present unless
``--device cpu`` is given.

The ``compare-*`` experiments are the book's shared benchmark: every rule on the
same 784-500-10 network with the same budget, so their numbers can sit in one table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import __version__, data
from .files import write_json_atomically
from .training import LearningRule, choose_device, fit

RESULTS_DIR = Path("results")


@dataclass(frozen=True)
class Experiment:
    """A runnable experiment: ``run(dataset, epochs, seed, device)`` returns a JSON-able dict.

    The dict must hold ``history`` (a ``History.to_dict()``) and ``config``.
    """

    name: str
    summary: str
    run: Callable[..., dict]
    dataset: str
    epochs: int
    datasets: tuple[str, ...] = ("mnist-5k", "fashion-mnist", "mnist")
    paper: str = ""


@dataclass(frozen=True)
class MLPRecipe:
    """One rule's settings for the shared 784-500-10 benchmark."""

    make_rule: Callable[[torch.nn.Module], LearningRule]
    activation: str = "tanh"
    lr: float = 0.2
    momentum: float = 0.0
    weight_decay: float = 1e-4
    batch_size: int = 64
    extra: dict = field(default_factory=dict)


def train_mlp_recipe(recipe: MLPRecipe, dataset: str, epochs: int, seed: int, device: str | None) -> dict:
    """Train a 784-500-10 MLP with the recipe's rule on ``dataset``; return history and config.

    The history also records ``update_angle_1``: degrees between the rule's hidden-layer
    update and backprop's on 1,000 fixed training examples, after every epoch."""
    from .feedback_alignment import update_angles
    from .mlp import MLP

    x_train, y_train, x_test, y_test = data.load(dataset)
    sizes = [x_train.shape[1], 500, int(y_train.max()) + 1]
    rule = recipe.make_rule(MLP(sizes, activation=recipe.activation, seed=seed))
    settings = {"batch_size": recipe.batch_size, "lr": recipe.lr, "momentum": recipe.momentum,
                "weight_decay": recipe.weight_decay}
    probe_x, probe_y = x_train[:1000].to(device), y_train[:1000].to(device)

    def hidden_update_angle(epoch, rule):
        return {"update_angle_1": update_angles(rule, probe_x, probe_y)[0]}

    history = fit(rule, (x_train, y_train, x_test, y_test), epochs=epochs, seed=seed, device=device,
                  on_epoch_end=hidden_update_angle, **settings)
    config = {"rule": rule.name, "sizes": sizes, "activation": recipe.activation, "optimizer": "sgd",
              **settings, **recipe.extra}
    return {"history": history.to_dict(), "config": config}


def comparison_recipes() -> dict[str, MLPRecipe]:
    """The shared benchmark's MLP rules, each with its settings (those of chapter 3 for FA's family)."""
    from .feedback_alignment import make_rule
    from .perturbation import NodePerturbation

    recipes = {key.lower(): MLPRecipe(lambda net, key=key: make_rule(key, net, seed=1)) for key in ("BP", "FA", "DFA", "SS", "KP")}
    recipes["np"] = MLPRecipe(lambda net: NodePerturbation(net, sigma=1e-3), lr=0.01, extra={"sigma": 1e-3})
    return recipes


def comparison_experiment(key: str, recipe: MLPRecipe) -> Experiment:
    def run(dataset, epochs, seed, device):
        return train_mlp_recipe(recipe, dataset, epochs, seed, device)

    return Experiment(
        name=f"compare-{key}",
        summary=f"shared benchmark: {key.upper()} on a 784-500-10 {recipe.activation} network",
        run=run,
        dataset="mnist-5k",
        epochs=20,
    )


def history_result(history, **config) -> dict:
    return {"history": history.to_dict(), "config": config}


def run_scellier_ep(dataset, epochs, seed, device) -> dict:
    """Scellier & Bengio's 1-hidden-layer settings (see equilibrium_propagation.run_paper_experiment)."""
    from . import equilibrium_propagation as ep

    history = ep.run_paper_experiment(dataset, epochs=epochs, seed=seed, device=device)
    return history_result(history, rule="EP", sizes=[784, 500, 10], batch_size=20, free_steps=40, nudged_steps=4,
                          beta=0.5, nudging="random-sign", layer_lrs=[0.1, 0.05])


def segregated_dendrites_runner(hidden: tuple[int, ...], mode: str, batch_size: int = 1, lr: float = 1.0):
    """A runner for Guerguiev et al.'s network with ``hidden`` layers, trained in ``mode``:
    online by default (the paper's procedure), else in minibatches of ``batch_size`` with step ``lr``."""

    def run(dataset, epochs, seed, device):
        from . import segregated_dendrites as sd

        record = sd.run_paper_experiment(dataset, hidden, epochs=epochs, mode=mode, seed=seed, device=device,
                                         batch_size=batch_size, lr=lr)
        config = {key: record[key] for key in ("sizes", "mode", "feedback", "g_a", "batch_size", "lr", "learning_rates")}
        return {"history": record["history"], "config": {"rule": "SD" if mode == "rate" else "SD-spiking", **config}}

    return run


def burstprop_runner(rule: str, hidden: tuple[int, ...] | None):
    """A runner for rate-based burstprop (``rule`` as named in burstprop.run_mnist_burstprop)."""

    def run(dataset, epochs, seed, device):
        from . import burstprop as bp

        sizes = bp.PAPER_HIDDEN if hidden is None else hidden
        history = bp.run_mnist_burstprop(dataset, hidden=sizes, epochs=epochs, rules=(rule,), seed=seed, device=device)[rule]
        short = "Burstprop-learned" if "learned" in rule else "Burstprop"
        return history_result(history, rule=short, sizes=[784, *sizes, 10], activation="sigmoid", output="sigmoid",
                              batch_size=bp.PAPER_BATCH_SIZE, momentum=bp.PAPER_MOMENTUM)

    return run


def paper_experiments() -> list[Experiment]:
    """Each chapter's paper-scale run, with the paper's settings as defaults."""
    from . import feedback_alignment as fa

    def lillicrap(rule):
        def run(dataset, epochs, seed, device):
            histories = fa.run_mnist_comparison(dataset, rules=(rule,), epochs=epochs, seed=seed, device=device)
            return history_result(histories[rule], rule=rule, sizes=[784, fa.MNIST_HIDDEN, 10], activation="sigmoid",
                                  weight_decay=fa.MNIST_WEIGHT_DECAY, lr_per_example=fa.MNIST_LR_PER_EXAMPLE)
        return run

    found = [
        Experiment(f"lillicrap2016-{rule.lower()}", f"Lillicrap et al. 2016: {rule} on a 784-1000-10 sigmoid network",
                   lillicrap(rule), "mnist", 100, paper="Lillicrap et al. 2016, Nat Commun 7:13276")
        for rule in ("BP", "FA")
    ]
    found.append(Experiment("scellier2017-ep", "Scellier & Bengio 2017: EP, 784-500-10, 1 hidden layer", run_scellier_ep,
                            "mnist", 25, paper="Scellier & Bengio 2017, Front Comput Neurosci"))
    for hidden in ((), (500,), (500, 100)):
        sizes = "-".join(map(str, (784, *hidden, 10)))
        found.append(Experiment(f"guerguiev2017-{sizes}", f"Guerguiev et al. 2017: segregated dendrites, {sizes}, spiking, online",
                                segregated_dendrites_runner(hidden, "spiking"), "mnist", 60,
                                paper="Guerguiev, Lillicrap & Richards 2017, eLife 6:e22901"))
    for rule, key in (("Burstprop", "burstprop"), ("Burstprop (learned Y)", "burstprop-learned")):
        found.append(Experiment(f"payeur2021-{key}", f"Payeur et al. 2021: rate-based {rule}, 784-500-500-10",
                                burstprop_runner(rule, None), "mnist", 100,
                                paper="Payeur et al. 2021, Nat Neurosci 24:1010"))
    return found


def experiments() -> dict[str, Experiment]:
    """Every experiment, by name."""
    found = [comparison_experiment(key, recipe) for key, recipe in comparison_recipes().items()]
    found.append(Experiment("compare-ep", "shared benchmark: EP on a 784-500-10 energy network (Scellier & Bengio's settings)",
                            run_scellier_ep, "mnist-5k", 20))
    for mode, rule in (("rate", "sd"), ("spiking", "sd-spiking")):
        found.append(Experiment(f"compare-{rule}", f"shared benchmark: segregated dendrites ({mode}) on 784-500-10",
                                segregated_dendrites_runner((500,), mode, batch_size=16, lr=2.0), "mnist-5k", 20))
    for rule, key in (("Burstprop", "burstprop"), ("Burstprop (learned Y)", "burstprop-learned")):
        found.append(Experiment(f"compare-{key}", f"shared benchmark: {rule} on a 784-500-10 sigmoid network",
                                burstprop_runner(rule, (500,)), "mnist-5k", 20))
    found += paper_experiments()
    return {e.name: e for e in found}


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_experiment(name: str, *, dataset=None, epochs=None, seed=0, device=None, out=RESULTS_DIR, argv=None) -> Path:
    """Run experiment ``name`` and write its JSON result; return the file's path."""
    known = experiments()
    if name not in known:
        raise ValueError(f"unknown experiment {name!r}; run with --list to see the {len(known)} experiments")
    experiment = known[name]
    dataset = dataset or experiment.dataset
    if dataset not in experiment.datasets:
        raise ValueError(f"experiment {name!r} runs on {', '.join(experiment.datasets)}, not {dataset!r}")
    epochs = experiment.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    device = str(choose_device(device))
    result = experiment.run(dataset=dataset, epochs=epochs, seed=seed, device=device)
    history = result["history"]
    payload = {
        "experiment": name,
        "summary": experiment.summary,
        "paper": experiment.paper,
        "dataset": dataset,
        "epochs": epochs,
        "seed": seed,
        "device": device,
        "config": result["config"],
        "history": history,
        "final_test_accuracy": history["metrics"]["test_accuracy"][-1],
        "wall_time_s": history["wall_time"],
        "hardware": hardware(),
        "dendnotes_version": __version__,
        "command": "python -m dendnotes.reproduce " + shlex.join(argv if argv is not None else [name]),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = Path(out) / f"{name}__{dataset}__seed{seed}.json"
    write_json_atomically(path, payload)
    return path


def describe_experiments() -> str:
    lines = []
    for e in experiments().values():
        lines.append(f"  {e.name:32s} {e.summary}")
        lines.append(f"  {'':32s} default: --dataset {e.dataset} --epochs {e.epochs}; datasets: {', '.join(e.datasets)}")
        if e.paper:
            lines.append(f"  {'':32s} paper: {e.paper}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dendnotes.reproduce",
        description=__doc__.split("\n\n")[0],
        epilog="experiments:\n" + describe_experiments(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", nargs="?", help="name of the experiment (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--dataset", help=f"one of {', '.join(data.DATASETS)} (default: the experiment's own)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the experiment's own)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: the GPU when present, else the CPU")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the JSON result (default: results)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(describe_experiments())
        return 0
    if not args.experiment:
        parser.error("name an experiment (see --list)")
    try:
        path = run_experiment(
            args.experiment, dataset=args.dataset, epochs=args.epochs, seed=args.seed,
            device=args.device, out=args.out, argv=argv,
        )
    except KeyboardInterrupt:
        print("interrupted: no result file was written", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
