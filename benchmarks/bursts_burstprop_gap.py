"""How far is rate burstprop from backprop on Fashion-MNIST, with learning rates chosen fairly?

    python benchmarks/bursts_burstprop_gap.py [--epochs 10] [--seeds 3] [--jobs 2] [--cache runs.jsonl]

One protocol for every rule, on the same 784-500-10 sigmoid network with squared error (the
network of chapter 6's benchmark and of ``burstprop.run_mnist_burstprop``): batch 32, SGD with
the authors' momentum (0.8), weight decay, weights uniform in [-0.1, 0.1]. Burstprop's output
update is p_0 times the gradient, so it runs at lr / p_0 with decay x p_0
(``burstprop.backprop_equivalent_sgd``): the same step and the same shrinkage per step as
backprop at lr. Rules: backprop; burstprop with learned feedback Y (Kolen-Pollack) and learned
recurrent weights Z; burstprop with fixed feedback Y and learned Z.

Learning rates: the last 10,000 training images are held out of training as a validation set.
Every rule trains with seed 0 at every rate of ``--rates`` for ``--epochs`` epochs on the other
50,000 images; the rate with the best validation accuracy (mean of the last 3 epochs) is the
rule's rate, and that
run's test accuracy is its seed-0 result; seeds 1 .. ``--seeds`` - 1 then train at that rate.
The test set is never used to choose anything. Writes
``benchmarks/results/bursts_burstprop_gap.{md,json}`` (the JSON holds every run's curves;
``burstprop.read_gap_benchmark`` reads it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from dendnotes import fit
from dendnotes.backprop import Backprop
from dendnotes.burstprop import (
    AUTHORS_MNIST_SCRIPT,
    GAP_BENCHMARK_RULES,
    P_BASELINE,
    PAPER_BATCH_SIZE,
    Burstprop,
    SigmoidMLP,
    backprop_equivalent_sgd,
    hidden_update_angles,
)
from dendnotes.data import load
from dendnotes.feedback_alignment import angle_between
from dendnotes.training import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
RATES = (0.05, 0.1, 0.2, 0.4)
VALIDATION = 10_000
SELECT_EPOCHS = 3


def make(rule: str, seed: int):
    """The network and learning rule for ``rule`` (one of GAP_BENCHMARK_RULES)."""
    net = SigmoidMLP([784, 500, 10], init_range=0.1, seed=seed)
    if rule == "BP":
        return Backprop(net)
    return Burstprop(net, learn_feedback=rule == "Burstprop, learned Y", feedback_scale=0.3, recurrent=True,
                     hidden_lr_scale=4.0, seed=seed + 1)


def train(rule: str, lr: float, seed: int, epochs: int, momentum: float, weight_decay: float) -> dict:
    """One run: validation and test accuracy after every epoch, and the final update/feedback angles."""
    x, y, x_test, y_test = load("fashion-mnist")
    x_val, y_val = x[-VALIDATION:], y[-VALIDATION:]
    learner = make(rule, seed)
    step_lr, decay = (lr, weight_decay) if rule == "BP" else backprop_equivalent_sgd(lr, weight_decay)

    def validation(epoch, learner):
        return {"validation_accuracy": evaluate(learner, x_val, y_val)["accuracy"]}

    start = time.perf_counter()
    history = fit(learner, (x[:-VALIDATION], y[:-VALIDATION], x_test, y_test), epochs=epochs,
                  batch_size=PAPER_BATCH_SIZE, lr=step_lr, momentum=momentum, weight_decay=decay, seed=seed,
                  progress=False, evaluate_train=False, on_epoch_end=validation)
    run = {"rule": rule, "lr": lr, "seed": seed, "wall_time_s": round(time.perf_counter() - start, 1),
           "validation_accuracy": history["validation_accuracy"], "test_accuracy": history["test_accuracy"],
           "update_angle": hidden_update_angles(learner, x[:1000], y[:1000])[0]}
    if rule != "BP":
        run["feedback_angle"] = angle_between(learner.net.weights[1], learner.feedback[0])
    print(f"{rule} lr {lr} seed {seed}: validation {run['validation_accuracy'][-1]:.2%}, "
          f"test {run['test_accuracy'][-1]:.2%} ({run['wall_time_s']:.0f} s)", flush=True)
    return run


def run_all(jobs: list[tuple], workers: int, settings: dict, cache: Path | None) -> list[dict]:
    """Train every (rule, lr, seed) of ``jobs``; runs already in ``cache`` (JSON lines, written as
    runs finish, for the same settings) are read back instead of trained again."""
    done = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text().splitlines():
            run = json.loads(line)
            if run.pop("settings") == settings:
                done[(run["rule"], run["lr"], run["seed"])] = run
    todo = [job for job in jobs if job not in done]

    def keep(run: dict) -> None:
        done[(run["rule"], run["lr"], run["seed"])] = run
        if cache is not None:
            with cache.open("a") as f:
                f.write(json.dumps({**run, "settings": settings}) + "\n")

    if workers == 1:
        for job in todo:
            keep(train(*job, **settings))
    else:
        with ProcessPoolExecutor(workers) as pool:
            for future in as_completed([pool.submit(train, *job, **settings) for job in todo]):
                keep(future.result())
    return [done[job] for job in jobs]


def selection_score(run: dict) -> float:
    """Validation accuracy averaged over the last SELECT_EPOCHS epochs (less noisy than the last one)."""
    last = run["validation_accuracy"][-SELECT_EPOCHS:]
    return sum(last) / len(last)


def summarise(runs: list[dict], rates: tuple[float, ...]) -> dict:
    """Per rule: the rate chosen on validation, validation score per rate, test accuracy per seed."""
    summary = {}
    for rule in GAP_BENCHMARK_RULES:
        grid = {r["lr"]: selection_score(r) for r in runs if r["rule"] == rule and r["seed"] == 0}
        chosen = max(grid, key=grid.get)
        final = sorted((r for r in runs if r["rule"] == rule and r["lr"] == chosen), key=lambda r: r["seed"])
        tests = [r["test_accuracy"][-1] for r in final]
        summary[rule] = {"lr": chosen, "validation_per_rate": {str(lr): grid[lr] for lr in rates},
                         "test_per_seed": tests, "test_mean": statistics.mean(tests),
                         "test_sd": statistics.stdev(tests) if len(tests) > 1 else 0.0,
                         "update_angle": [r["update_angle"] for r in final],
                         "feedback_angle": [r.get("feedback_angle") for r in final]}
    bp = summary["BP"]["test_mean"]
    for rule in summary:
        summary[rule]["gap_points"] = 100 * (summary[rule]["test_mean"] - bp)
    return summary


def markdown(summary: dict, args, settings: dict, runs: list[dict]) -> str:
    def pct(values):
        return ", ".join(f"{v:.2%}" for v in values)

    lines = [
        "# Burstprop against backprop on Fashion-MNIST, same network and protocol",
        "",
        f"Produced by `python benchmarks/bursts_burstprop_gap.py --epochs {args.epochs} --seeds {args.seeds} "
        f"--rates {' '.join(map(str, args.rates))} --momentum {args.momentum} --weight-decay {args.weight_decay:g} "
        f"--jobs {args.jobs}{' --cache FILE' if args.cache else ''}` on {datetime.date.today()} (CPU, {os.cpu_count()} cores shared with other jobs; "
        f"{len(runs)} runs, {sum(r['wall_time_s'] for r in runs) / 60:.0f} min of run time in all, {args.jobs} at a "
        "time" + ("; finished runs were read back from `--cache`, as when a run is resumed)." if args.cache else ")."),
        "",
        f"784-500-10 sigmoid network, squared error, batch {PAPER_BATCH_SIZE}, SGD with momentum "
        f"{settings['momentum']} (the authors' script's), weight decay {settings['weight_decay']:g}, "
        f"{args.epochs} epochs. Burstprop (recurrent Z learned as in the authors' script, output p_0 = {P_BASELINE}) "
        f"runs at lr / p_0 with decay x p_0: backprop's step and per-step decay. Each rule's learning rate is "
        f"chosen from {tuple(args.rates)} by the accuracy on 10,000 training images held out of training "
        f"(seed 0, mean over epochs {args.epochs - SELECT_EPOCHS + 1}-{args.epochs}); seeds 1-{args.seeds - 1} then train at that rate. The test set "
        "chooses nothing. Runs with the same seed start from the same weights and see the examples in the same "
        "order whatever the rule, so the gaps are paired seed by seed.",
        "",
        f"| rule | learning rate | validation accuracy per rate (seed 0, last {SELECT_EPOCHS} epochs) | test accuracy per seed | mean +- sd | "
        "gap to BP (points) |",
        "|---|---:|---|---|---:|---:|",
    ]
    for rule, s in summary.items():
        tried = ", ".join(f"{lr}: {a:.1%}" for lr, a in s["validation_per_rate"].items())
        lines.append(f"| {rule} | {s['lr']} | {tried} | {pct(s['test_per_seed'])} | "
                     f"{s['test_mean']:.2%} +- {s['test_sd']:.2%} | {s['gap_points']:+.1f} |")
    lines += ["", "Angle between the first layer's update and backprop's gradient on 1,000 training images after "
              "training (degrees, per seed): " + "; ".join(
                  f"{rule} {', '.join(f'{a:.0f}' for a in s['update_angle'])}" for rule, s in summary.items()
                  if rule != "BP"),
              "Angle between the output weights W_2 and the feedback Y (degrees, per seed): " + "; ".join(
                  f"{rule} {', '.join(f'{a:.0f}' for a in s['feedback_angle'])}" for rule, s in summary.items()
                  if rule != "BP"), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=RATES)
    parser.add_argument("--momentum", type=float, default=AUTHORS_MNIST_SCRIPT["momentum"])
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU thread each)")
    parser.add_argument("--cache", type=Path, help="JSON-lines file of finished runs, to resume an interrupted benchmark")
    args = parser.parse_args()
    if args.seeds < 1 or args.epochs < 1 or args.jobs < 1:
        parser.error("--epochs, --seeds and --jobs must be at least 1")
    settings = {"epochs": args.epochs, "momentum": args.momentum, "weight_decay": args.weight_decay}
    runs = run_all([(rule, lr, 0) for rule in GAP_BENCHMARK_RULES for lr in args.rates], args.jobs, settings,
                   args.cache)
    chosen = summarise(runs, tuple(args.rates))
    runs += run_all([(rule, chosen[rule]["lr"], seed) for rule in GAP_BENCHMARK_RULES
                     for seed in range(1, args.seeds)], args.jobs, settings, args.cache)
    summary = summarise(runs, tuple(args.rates))
    RESULTS.mkdir(exist_ok=True)
    record = {"settings": {**settings, "rates": list(args.rates), "seeds": args.seeds, "network": [784, 500, 10],
                           "batch_size": PAPER_BATCH_SIZE, "p_baseline": P_BASELINE, "validation": VALIDATION, "select_epochs": SELECT_EPOCHS},
              "summary": summary, "runs": runs, "date": str(datetime.date.today())}
    (RESULTS / "bursts_burstprop_gap.json").write_text(json.dumps(record, indent=1) + "\n")
    text = markdown(summary, args, settings, runs)
    (RESULTS / "bursts_burstprop_gap.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
