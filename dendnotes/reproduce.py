"""Run a named experiment at full scale and save its results as JSON.

    python -m dendnotes.reproduce --list
    python -m dendnotes.reproduce EXPERIMENT [--dataset NAME] [--epochs N] [--seed S]
                                  [--device cpu|cuda] [--out DIR] [--force]

Each experiment trains one learning rule and writes
``<out>/<experiment>__<dataset>__e<epochs>__seed<S>.json`` holding the configuration,
the per-epoch history, the final test accuracy, the wall time, the hardware, the
package version and a checksum of the content (see ``dendnotes.results``). The file
appears only when the run has finished: an interrupted run leaves nothing behind.
An existing result is never replaced unless ``--force`` is given, and the output
folder is checked before training starts. The GPU is used when one is present
unless ``--device cpu`` is given.

The ``compare-*`` experiments are the book's shared benchmark: BP, FA, DFA, SS, KP,
NP, EP and the readout-only control on the same 784-256-256-10 layer sizes, batch,
decay and epochs, each at the learning rate it does best with on a validation split
(see ``select_learning_rate``). The segregated-dendrites and burstprop ``compare-*``
experiments keep their own 784-500-10 networks.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import __version__, data
from .files import check_writable_dir, write_json_atomically
from .results import result_name, sealed
from .training import LearningRule, ReadoutOnly, TrainingDivergedError, check_seed, choose_device, fit

RESULTS_DIR = Path("results")
CHECKPOINT_DIR = RESULTS_DIR / "checkpoints"  # progress of long runs that can resume (segregated dendrites)


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


# The shared benchmark (the compare-* experiments): every MLP rule trains the same
# 784-256-256-10 tanh network with the same batch, decay and epochs; only the learning
# rate is each rule's own, picked from one grid by accuracy on a validation split
# held out of the training set (the test set never chooses anything).
BENCHMARK_HIDDEN = (256, 256)
BENCHMARK_EPOCHS = 20
BENCHMARK_LR_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# Where the best rate is an end of the grid, the grid grows past that end (one 1-3-10
# step at a time, at most this many steps), so no rule is held back by the grid.
BENCHMARK_GRID_EXTENSIONS = 3
BENCHMARK_VALIDATION_FRACTION = 1 / 6  # 10,000 of Fashion-MNIST's 60,000 training images
BENCHMARK_GRID_EPOCHS = 1
BENCHMARK_SPLIT_SEED = 0


@dataclass(frozen=True)
class BenchmarkRecipe:
    """One rule's fixed settings for the shared benchmark; ``make_rule(sizes, seed)`` builds
    the rule and its network. The learning rate is not part of the recipe:
    ``select_learning_rate`` picks it."""

    make_rule: Callable[[list[int], int], LearningRule]
    network: str = "tanh MLP"
    momentum: float = 0.0
    weight_decay: float = 1e-4
    batch_size: int = 64
    extra: dict = field(default_factory=dict)


def validation_split(x: torch.Tensor, y: torch.Tensor, size: int, seed: int = BENCHMARK_SPLIT_SEED):
    """(x_fit, y_fit, x_val, y_val): ``size`` training examples held out at random (fixed ``seed``)."""
    if not 0 < size < len(x):
        raise ValueError(f"validation size must lie between 1 and {len(x) - 1}, got {size}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    fit_idx, val_idx = order[:-size], order[-size:]
    return x[fit_idx], y[fit_idx], x[val_idx], y[val_idx]


def benchmark_sizes(x_train: torch.Tensor, y_train: torch.Tensor) -> list[int]:
    return [x_train.shape[1], *BENCHMARK_HIDDEN, int(y_train.max()) + 1]


def train_recipe(recipe: BenchmarkRecipe, data_split, lr: float, epochs: int, seed: int, device, progress=True):
    """Train the benchmark network with the recipe's rule at ``lr`` on ``data_split``;
    return the History and the rule.

    After every epoch an MLP rule's history records, for each hidden layer l,
    ``update_angle_l``: degrees between the rule's update of W_l and backprop's on 1,000
    fixed training examples (FA's family also the feedback angle and mismatch). Not for
    the readout-only control, whose hidden layers do not change, nor for EP."""
    from .feedback_alignment import alignment_recorder, update_angles
    from .mlp import MLP

    x_train, y_train = data_split[0], data_split[1]
    rule = recipe.make_rule(benchmark_sizes(x_train, y_train), seed)
    probe_x, probe_y = x_train[:1000], y_train[:1000]
    if isinstance(rule, ReadoutOnly) or not isinstance(rule.net, MLP):
        on_epoch_end = None
    elif hasattr(rule, "alignment_pairs") or rule.name == "BP":
        on_epoch_end = alignment_recorder(probe_x, probe_y)
    else:
        def on_epoch_end(epoch, rule):
            angles = update_angles(rule, probe_x.to(device), probe_y.to(device))[: len(BENCHMARK_HIDDEN)]
            return {f"update_angle_{l + 1}": a for l, a in enumerate(angles)}
    return fit(rule, data_split, epochs=epochs, seed=seed, device=device, lr=lr, progress=progress,
               on_epoch_end=on_epoch_end, batch_size=recipe.batch_size, momentum=recipe.momentum,
               weight_decay=recipe.weight_decay), rule


_SELECTED: dict = {}


def neighbouring_rate(lr: float, step: int) -> float:
    """The rate ``step`` places away from ``lr`` on the series 1, 3, 10, 30, ... x 10^k."""
    exponent = math.floor(math.log10(lr) + 1e-9)
    mantissa = round(lr / 10**exponent, 6)
    if mantissa not in (1, 3):
        raise ValueError(f"learning rate {lr} is not on the 1-3-10 series")
    index = 2 * exponent + (mantissa == 3) + step
    return float(f"{(3 if index % 2 else 1) * 10 ** (index // 2):.12g}")


def select_learning_rate(key: str, recipe: BenchmarkRecipe, dataset: str, device) -> dict:
    """Train rule ``key`` (network seed 0) at every rate of BENCHMARK_LR_GRID for
    BENCHMARK_GRID_EPOCHS epochs on the training set minus a held-out
    BENCHMARK_VALIDATION_FRACTION of it; pick the rate with the best final validation accuracy.
    While the best rate is the grid's lowest or highest, the grid grows past that end
    (``neighbouring_rate``, at most BENCHMARK_GRID_EXTENSIONS times).

    Returns the grid, every validation curve (None where training diverged) and the
    chosen rate. Remembered per process, so several seeds share one search."""
    if (key, dataset) in _SELECTED:
        return _SELECTED[(key, dataset)]
    x_train, y_train, _, _ = data.load(dataset)
    split = validation_split(x_train, y_train, int(len(x_train) * BENCHMARK_VALIDATION_FRACTION))
    curves = {}

    def validation_curve(lr):
        try:
            history, _ = train_recipe(recipe, split, lr, BENCHMARK_GRID_EPOCHS, 0, device, progress=False)
            return history["test_accuracy"]
        except TrainingDivergedError:
            return None

    def best_rate():
        finished = {float(lr): curve[-1] for lr, curve in curves.items() if curve is not None}
        if not finished:
            raise RuntimeError(f"{key}: training diverged at every learning rate of {grid}")
        return max(finished, key=finished.get)

    grid = list(BENCHMARK_LR_GRID)
    for lr in grid:
        curves[str(lr)] = validation_curve(lr)
    for _ in range(BENCHMARK_GRID_EXTENSIONS):
        best = best_rate()
        if best not in (grid[0], grid[-1]):
            break
        step = -1 if best == grid[0] else 1
        lr = neighbouring_rate(best, step)
        grid = [lr, *grid] if step < 0 else [*grid, lr]
        curves[str(lr)] = validation_curve(lr)
    chosen = best_rate()
    selection = {"grid": grid, "base_grid": list(BENCHMARK_LR_GRID), "grid_epochs": BENCHMARK_GRID_EPOCHS,
                 "validation_size": len(split[2]), "split_seed": BENCHMARK_SPLIT_SEED,
                 "network_seed": 0, "validation_accuracy": {str(lr): curves[str(lr)] for lr in grid},
                 "chosen_lr": chosen}
    _SELECTED[(key, dataset)] = selection
    return selection


# EP on the benchmark's layer sizes: Scellier & Bengio's two-hidden-layer choices (beta 1,
# 6 nudged steps, per-layer rates falling 4x then 10x) but 60 free steps from zero states
# (they used 150 from states persisted per example).
EP_BENCHMARK = {"free_steps": 60, "nudged_steps": 6, "beta": 1.0, "layer_scales": [1.0, 0.25, 0.025],
                "nudging": "random-sign"}


def tanh_mlp_rule(make: Callable[["MLP", int], LearningRule]) -> Callable[[list[int], int], LearningRule]:
    """A ``make_rule(sizes, seed)`` that builds the benchmark's tanh MLP (seeded) and hands it to ``make``."""
    from .mlp import MLP

    return lambda sizes, seed: make(MLP(sizes, activation="tanh", seed=seed), seed)


def ep_rule(sizes: list[int], seed: int) -> LearningRule:
    from .equilibrium_propagation import EnergyNetwork, EquilibriumPropagation

    settings = dict(EP_BENCHMARK)
    net = EnergyNetwork(sizes, free_steps=settings.pop("free_steps"), seed=seed)
    return EquilibriumPropagation(net, seed=seed, **settings)


def comparison_recipes() -> dict[str, BenchmarkRecipe]:
    """The shared benchmark's rules; the feedback matrices are drawn from the run's seed."""
    from .backprop import Backprop
    from .feedback_alignment import make_rule
    from .perturbation import NodePerturbation

    recipes = {key.lower(): BenchmarkRecipe(tanh_mlp_rule(lambda net, seed, key=key: make_rule(key, net, seed=seed + 1)))
               for key in ("BP", "FA", "DFA", "SS", "KP")}
    recipes["np"] = BenchmarkRecipe(tanh_mlp_rule(lambda net, seed: NodePerturbation(net, sigma=1e-3, seed=seed)),
                                    extra={"sigma": 1e-3})
    recipes["readout"] = BenchmarkRecipe(tanh_mlp_rule(lambda net, seed: ReadoutOnly(Backprop(net))))
    recipes["ep"] = BenchmarkRecipe(ep_rule, network="energy network (clipped states, squared-error cost)",
                                    extra=EP_BENCHMARK)
    return recipes


def comparison_experiment(key: str, recipe: BenchmarkRecipe) -> Experiment:
    def run(dataset, epochs, seed, device):
        selection = select_learning_rate(key, recipe, dataset, device)
        history, rule = train_recipe(recipe, data.load(dataset), selection["chosen_lr"], epochs, seed, device)
        config = {"rule": "Readout only" if key == "readout" else rule.name, "sizes": rule.net.sizes,
                  "network": recipe.network, "optimizer": "sgd", "batch_size": recipe.batch_size,
                  "lr": selection["chosen_lr"], "momentum": recipe.momentum, "weight_decay": recipe.weight_decay,
                  "lr_selection": selection, **recipe.extra}
        return {"history": history.to_dict(), "config": config}

    sizes = "-".join(map(str, (784, *BENCHMARK_HIDDEN, 10)))
    what = "readout-only control (hidden layers frozen)" if key == "readout" else key.upper()
    return Experiment(
        name=f"compare-{key}",
        summary=f"shared benchmark: {what} on a {sizes} {recipe.network}, lr chosen on a validation split",
        run=run,
        dataset="fashion-mnist",
        epochs=BENCHMARK_EPOCHS,
    )


def history_result(history, **config) -> dict:
    return {"history": history.to_dict(), "config": config}


def run_scellier_ep(dataset, epochs, seed, device) -> dict:
    """Scellier & Bengio's 1-hidden-layer settings (see equilibrium_propagation.run_paper_experiment)."""
    from . import equilibrium_propagation as ep

    history = ep.run_paper_experiment(dataset, epochs=epochs, seed=seed, device=device)
    return history_result(history, rule="EP", sizes=[784, 500, 10], batch_size=20, free_steps=40, nudged_steps=4,
                          beta=0.5, nudging="random-sign", layer_lrs=[0.1, 0.05])


def segregated_dendrites_runner(name: str, hidden: tuple[int, ...], mode: str, batch_size: int = 1, lr: float = 1.0):
    """A runner for Guerguiev et al.'s network with ``hidden`` layers, trained in ``mode``:
    online by default (the paper's procedure), else in minibatches of ``batch_size`` with step ``lr``.
    It saves a checkpoint after every epoch in ``CHECKPOINT_DIR`` and resumes from one of the same
    settings (the same command after an interruption goes on where it stopped)."""

    def run(dataset, epochs, seed, device):
        from . import segregated_dendrites as sd

        checkpoint = CHECKPOINT_DIR / f"{name}__{dataset}__seed{seed}.pt"
        record = sd.run_paper_experiment(dataset, hidden, epochs=epochs, mode=mode, seed=seed, device=device,
                                         batch_size=batch_size, lr=lr, checkpoint=checkpoint)
        config = {key: record[key] for key in ("sizes", "mode", "feedback", "g_a", "batch_size", "lr", "learning_rates")}
        result = {"history": record["history"], "config": {"rule": "SD" if mode == "rate" else "SD-spiking", **config}}
        if record["interrupted"]:
            result["note"] = (f"interrupted after epoch {record['epochs']} of {epochs}; the same command resumes "
                              f"from the checkpoint {checkpoint}")
        return result

    return run


def burstprop_runner(rule: str, hidden: tuple[int, ...] | None):
    """A runner for rate-based burstprop (``rule`` as named in burstprop.run_mnist_burstprop)."""

    def run(dataset, epochs, seed, device):
        from . import burstprop as bp

        sizes = bp.HIDDEN if hidden is None else hidden
        history = bp.run_mnist_burstprop(dataset, hidden=sizes, epochs=epochs, rules=(rule,), seed=seed, device=device)[rule]
        short = "Burstprop-learned" if "learned" in rule else "Burstprop"
        return history_result(history, rule=short, sizes=[784, *sizes, 10], activation="sigmoid", output="sigmoid",
                              batch_size=bp.PAPER_BATCH_SIZE, momentum=bp.MOMENTUM)

    return run


def xor_accuracy(rates: torch.Tensor, config) -> float:
    """Fraction of the four XOR patterns whose output rate lies on the target's side of the
    midpoint between rate_low and rate_high."""
    from .bursts import XOR_TARGETS

    middle = (config.rate_low + config.rate_high) / 2
    return float(((rates > middle).float() == XOR_TARGETS).float().mean())


def spiking_xor_runner(variant: str, setting: str = "authors"):
    """A runner for the paper-scale spiking XOR (``--epochs`` counts training examples, as in the
    authors' code: four examples per presentation of the patterns). ``variant``: "full", or the
    controls "no-feedback" (burst feedback cut) and "frozen-hidden" (hidden plasticity off);
    ``setting``: "authors" (``bursts.XORConfig()``) or "ours" (``bursts.PAPER_SCALE_XOR``, which learns)."""

    def run(dataset, epochs, seed, device):
        import time
        from dataclasses import asdict, replace

        from . import bursts
        from .training import History

        config = {"authors": bursts.XORConfig(), "ours": bursts.PAPER_SCALE_XOR}[setting]
        config = {"full": config, "no-feedback": replace(config, feedback=0.0),
                  "frozen-hidden": replace(config, hidden_learning=0.0)}[variant]
        start = time.perf_counter()
        result = bursts.run_xor_experiment(n_examples=epochs, config=config, seed=seed, device=device)
        history = History()
        # rates[k] were measured at the start of presentation k + 1, after 4 k training examples;
        # each example logs the latest measurement (one history entry per example, as results require)
        measured = [result["before"], *result["rates"][1:], result["after"]]
        for example in range(epochs + 1):
            rates = measured[example // 4]
            values = {f"rate_{k:02b}": r for k, r in enumerate(rates.tolist())}
            history.log(example, {**values, "test_accuracy": xor_accuracy(rates, config)})
        history.wall_time = time.perf_counter() - start
        settings = {k: v for k, v in asdict(config).items() if k != "params"}
        return history_result(history, rule=f"burst-dependent plasticity ({variant})", **settings,
                              dt=config.params.dt, epochs_are="training examples")

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
                                segregated_dendrites_runner(f"guerguiev2017-{sizes}", hidden, "spiking"), "mnist", 60,
                                paper="Guerguiev, Lillicrap & Richards 2017, eLife 6:e22901"))
    for rule, key in (("Burstprop", "burstprop"), ("Burstprop (learned Y)", "burstprop-learned")):
        found.append(Experiment(f"payeur2021-{key}", f"Payeur et al. 2021: rate-based {rule}, 784-500-500-10 "
                                "(the authors' script defaults to three hidden layers)",
                                burstprop_runner(rule, None), "mnist", 100,
                                paper="Payeur et al. 2021, Nat Neurosci 24:1010"))
    for setting, prefix, described in (("authors", "", "the authors' settings"),
                                       ("ours", "-ours", "homeostasis at 0.1, output bias -3")):
        for variant, suffix in (("full", ""), ("no-feedback", "-nofeedback"), ("frozen-hidden", "-frozenhidden")):
            found.append(Experiment(f"payeur2021-xor{prefix}{suffix}",
                                    f"Payeur et al. 2021: spiking XOR ({variant}; {described}), 5 x 500 neurons, "
                                    "8 s examples; --epochs counts examples (the paper's 2,000)",
                                    spiking_xor_runner(variant, setting), "xor", 2000, datasets=("xor",),
                                    paper="Payeur et al. 2021, Nat Neurosci 24:1010"))
    return found


def experiments() -> dict[str, Experiment]:
    """Every experiment, by name."""
    found = [comparison_experiment(key, recipe) for key, recipe in comparison_recipes().items()]
    for mode, rule in (("rate", "sd"), ("spiking", "sd-spiking")):
        found.append(Experiment(f"compare-{rule}", f"shared benchmark: segregated dendrites ({mode}) on 784-500-10",
                                segregated_dendrites_runner(f"compare-{rule}", (500,), mode, batch_size=16, lr=2.0),
                                "mnist-5k", 20))
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


def run_experiment(name: str, *, dataset=None, epochs=None, seed=0, device=None, out=RESULTS_DIR, argv=None,
                   force: bool = False) -> Path:
    """Run experiment ``name`` and write its JSON result; return the file's path.

    Every argument, the output folder and the result's name are checked before training:
    an existing result is replaced only with ``force=True``."""
    known = experiments()
    if name not in known:
        raise ValueError(f"unknown experiment {name!r}; run with --list to see the {len(known)} experiments")
    experiment = known[name]
    dataset = dataset or experiment.dataset
    if dataset not in experiment.datasets:
        raise ValueError(f"experiment {name!r} runs on {', '.join(experiment.datasets)}, not {dataset!r}")
    epochs = experiment.epochs if epochs is None else epochs
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    check_seed(seed, "--seed")
    device = str(choose_device(device))
    path = check_writable_dir(out) / result_name(name, dataset, epochs, seed)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; a result is never replaced silently: pass --force to replace it, "
                              "or --out another folder")
    result = experiment.run(dataset=dataset, epochs=epochs, seed=seed, device=device)
    history = result["history"]
    if history["epochs"][-1] < epochs:  # interrupted: the result of the epochs completed
        epochs = history["epochs"][-1]
        path = path.with_name(result_name(name, dataset, epochs, seed))
    payload = {
        "experiment": name,
        "summary": experiment.summary,
        "paper": experiment.paper,
        "dataset": dataset,
        "epochs": epochs,
        "seed": seed,
        "device": device,
        "config": result["config"],
        **({"note": result["note"]} if "note" in result else {}),
        "history": history,
        "final_test_accuracy": history["metrics"]["test_accuracy"][-1],
        "wall_time_s": history["wall_time"],
        "hardware": hardware(),
        "dendnotes_version": __version__,
        "command": "python -m dendnotes.reproduce " + shlex.join(argv if argv is not None else [name]),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    publish(path, sealed(payload), force)
    return path


def publish(path: Path, payload: dict, force: bool) -> None:
    """Write the result; if another run wrote ``path`` meanwhile, keep this one beside it and say so."""
    try:
        write_json_atomically(path, payload, overwrite=force)
    except FileExistsError:
        kept = path.with_name(f"{path.name}.unpublished-{os.getpid()}")
        write_json_atomically(kept, payload)
        raise FileExistsError(f"{path} was written by another run while this one trained; this run's result is "
                              f"kept in {kept}: compare the two, then rename it or rerun with --force") from None


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
    parser.add_argument("--seed", type=int, default=0, help="random seed, 0 to 2**32 - 1 (default 0)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: the GPU when present, else the CPU")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the JSON result (default: results)")
    parser.add_argument("--force", action="store_true", help="replace an existing result of the same run")
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
            device=args.device, out=args.out, argv=argv, force=args.force,
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
