"""Time to accuracy of the spiking segregated-dendrites model, trained online as the paper does.

Guerguiev, Lillicrap & Richards 2017: 784-500-10, spiking, dt = 1 ms, forward and target
phases of 50 ms plus a Wald extra, one update per image. Three ways to train it, measured
in one run on the same images (the 4,000 training images of "mnist-5k"):

* compiled online: :func:`dendnotes.segregated_dendrites.compiled_phase`, every phase one call
  of a numba-compiled kernel, the update applied in place (``SegregatedDendrites.train_step``);
* step-by-step online: :meth:`SegregatedNetwork.run_phase`, the reference, one time step
  after another in torch, and a dense update (``SegregatedDendrites(..., stepwise=True)``);
* batched: 16 images simulated in parallel by the compiled kernel, one update per batch
  (``lr`` = 2), the mode the package offered before the online path was fast.

For each: training examples per second (simulation and updates), and the training time (wall
and CPU) it needs to bring the test error on the 1,000 test images of "mnist-5k" below a target
(default 20 %), evaluated every ``--eval-every`` examples; evaluation time is not counted.
The test error is that of the rate mode's steady state with the trained weights, the limit
of a long test phase (a 500 ms spiking test of 1,000 images would cost more than the
training being timed). Run:

    python benchmarks/segregated_dendrites_speed.py            # writes benchmarks/results/...
    python benchmarks/segregated_dendrites_speed.py --quick    # a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import torch

from dendnotes.data import load
from dendnotes.segregated_dendrites import SegregatedDendrites, SegregatedNetwork
from dendnotes.training import evaluate

RESULTS = Path(__file__).parent / "results" / "segregated_dendrites_speed.md"


def time_to_error(name, rule, data, *, batch_size, lr, target, eval_every, max_examples):
    """Train until the test error is below ``target``; return a row of measurements."""
    x_train, y_train, x_test, y_test = data
    seen, wall, cpu, reached, error = 0, 0.0, 0.0, None, None
    while seen < max_examples:
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(eval_every // batch_size):
            i = seen % len(x_train)
            rule.train_step(x_train[i : i + batch_size], y_train[i : i + batch_size], lr)
            seen += batch_size
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        error = 100 * (1 - evaluate(SegregatedDendrites(rule.net, mode="rate"), x_test, y_test)["accuracy"])
        print(f"{name}: {seen} examples, {wall:.1f} s, test error {error:.1f} %", flush=True)
        if error < target:
            reached = seen
            break
    return {"name": name, "batch": batch_size, "examples": seen, "wall": wall, "cpu": cpu, "reached": reached,
            "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=20.0, help="test error to reach, %% (default 20)")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--max-examples", type=int, default=8000, help="online; the batched mode gets 4x as many")
    parser.add_argument("--quick", action="store_true", help="tiny run, results not written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.eval_every, args.max_examples, args.target = 32, 64, 0.0

    load_at_start = os.getloadavg()[0]
    x_train, y_train, x_test, y_test = load("mnist-5k")
    data = (x_train, y_train, x_test, y_test)
    sizes = [784, 500, 10]
    runs = [("compiled online", dict(stepwise=False), 1, 1.0, 1),
            ("step-by-step online (reference)", dict(stepwise=True), 1, 1.0, 1),
            ("batched, 16 per update", dict(stepwise=False), 16, 2.0, 4)]
    rows = []
    for name, options, batch_size, lr, more in runs:  # the batched mode: 4x the examples, tested 4x less often
        rule = SegregatedDendrites(SegregatedNetwork(sizes, seed=0), mode="spiking", seed=0, **options)
        rows.append(time_to_error(name, rule, data, batch_size=batch_size, lr=lr, target=args.target,
                                  eval_every=more * args.eval_every, max_examples=more * args.max_examples))

    reference = rows[1]
    load_avg = os.getloadavg()
    lines = [
        "# Segregated dendrites: time to accuracy, spiking mode",
        "",
        f"Produced by `python benchmarks/segregated_dendrites_speed.py` on {datetime.date.today()}.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__} with {torch.get_num_threads()} thread(s); load average (1 min) at the start of the "
        f"run {load_at_start:.1f}, at its end {load_avg[0]:.1f}: the CPU was shared with other jobs, so absolute times are inflated and only the "
        "ratios, measured in the same run, carry over. Wall times swing with the other jobs' load during each "
        "part of the run; CPU times (this process's, one thread) are steadier, so the speed-ups are given in "
        "CPU time, with wall time in brackets. Everything runs on one thread (the package's thread policy; the "
        "compiled kernels are single-threaded).",
        f"Network {'-'.join(map(str, sizes))}, g_a = 0, forward and target phases of 50 ms + Wald(2, 1) ms, "
        "dt = 1 ms, the paper's learning rates; trained on the 4,000 training images of mnist-5k in order, "
        f"tested every {args.eval_every} examples (batched: every {4 * args.eval_every}) on its 1,000 test images (the "
        f"rate mode's steady state with the trained weights, the limit of a long test phase; evaluation time not "
        f"counted); target: test error below {args.target:g} %.",
        "",
        "| training | examples / s (wall) | examples / CPU-s | examples to reach the target | wall time to "
        "reach it (s) | CPU time to reach it (s) | speed-up over the reference, CPU time (wall time) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rate, cpu_rate = row["examples"] / row["wall"], row["examples"] / row["cpu"]
        reached = f"{row['reached']:,}" if row["reached"] else f"not within {row['examples']:,} (error {row['error']:.1f} %)"
        prefix = "" if row["reached"] else "> "
        if row["reached"] and reference["reached"]:
            speedup = f"{reference['cpu'] / row['cpu']:.1f}x ({reference['wall'] / row['wall']:.1f}x)"
        else:
            speedup = f"{cpu_rate / (reference['examples'] / reference['cpu']):.1f}x per example"
        lines.append(f"| {row['name']} | {rate:.0f} | {cpu_rate:.0f} | {reached} | {prefix}{row['wall']:.0f} | "
                     f"{prefix}{row['cpu']:.1f} | {speedup} |")
    lines += [
        "",
        "The two online runs simulate the same model with the same random numbers (one seeded generator that the "
        "kernel and the reference draw from in the same order); they can part ways only where float32 rounding "
        "flips a spike, so they need about the same number of examples, and the "
        "speed-up in time to accuracy is the speed-up per example. The batched mode is fast per example "
        "but learns less per example (its step is the paper's step applied to the batch mean).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
