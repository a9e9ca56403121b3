"""Training speed of the spiking segregated-dendrites model: batched vs one example at a time.

Both implementations simulate the same model (Guerguiev, Lillicrap & Richards 2017:
784-500-10, spiking, dt = 1 ms, forward and target phases of 50 ms plus a Wald extra)
on the same MNIST images, in the same run:

* one at a time: :func:`dendnotes.segregated_dendrites.train_one_at_a_time`, a plain
  loop over examples, time steps and layers on 1-D tensors, updating after every
  example (the paper's online procedure);
* batched: :class:`~dendnotes.segregated_dendrites.SegregatedDendrites`, B examples
  simulated as (B, n) tensors, one update per batch.

The figure of merit is training examples per second (simulation and weight updates;
no testing). Run:

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
from dendnotes.segregated_dendrites import SegregatedDendrites, SegregatedNetwork, train_one_at_a_time

RESULTS = Path(__file__).parent / "results" / "segregated_dendrites_speed.md"
TARGET_SPEEDUP = 20.0


def one_at_a_time_rate(x, y, sizes, repeats: int) -> float:
    """Examples per second of the online reference (best of ``repeats`` runs)."""
    best = float("inf")
    for r in range(repeats):
        net = SegregatedNetwork(sizes, seed=r)
        start = time.perf_counter()
        train_one_at_a_time(net, x, y, seed=r)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def batched_rate(x, y, sizes, batch_size: int, repeats: int) -> float:
    """Examples per second of the batched rule, updates included (best of ``repeats`` runs)."""
    best = float("inf")
    for r in range(repeats):
        rule = SegregatedDendrites(SegregatedNetwork(sizes, seed=r), mode="spiking", seed=r)
        params = rule.parameters()
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            _, updates = rule.compute_updates(x[i : i + batch_size], y[i : i + batch_size])
            with torch.no_grad():
                for p, u in zip(params, updates):
                    p -= u
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-examples", type=int, default=30)
    parser.add_argument("--batched-examples", type=int, default=1024)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 128, 512])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both implementations (default 1: the CPU is shared with other jobs, "
                             "and on a busy machine a second thread slows small tensor operations down)")
    parser.add_argument("--quick", action="store_true", help="tiny run, results not written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.reference_examples, args.batched_examples, args.batch_sizes, args.repeats = 3, 64, [32], 1
    torch.set_num_threads(args.threads)

    x_train, y_train, _, _ = load("mnist-5k")
    sizes = [784, 500, 10]
    reference = one_at_a_time_rate(x_train[: args.reference_examples], y_train[: args.reference_examples],
                                   sizes, args.repeats)
    rows = [("one at a time (online)", 1, reference, 1.0)]
    for b in args.batch_sizes:
        rate = batched_rate(x_train[: args.batched_examples], y_train[: args.batched_examples], sizes, b, args.repeats)
        rows.append(("batched", b, rate, rate / reference))

    best = max(rows[1:], key=lambda r: r[2])
    epoch_hours = 60000 / best[2] / 3600
    load_avg = os.getloadavg()
    lines = [
        "# Segregated dendrites: training speed, spiking mode",
        "",
        f"Produced by `python benchmarks/segregated_dendrites_speed.py` on {datetime.date.today()}.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads; load average at the end of the run "
        f"{load_avg[0]:.1f} (other jobs shared the CPU).",
        f"Network {'-'.join(map(str, sizes))}, forward and target phases of 50 ms + Wald(2, 1) ms, dt = 1 ms, "
        f"mnist-5k images; both implementations measured in the same run, best of {args.repeats}.",
        "",
        "| implementation | batch size | training examples / s | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, b, rate, speedup in rows:
        lines.append(f"| {name} | {b} | {rate:.1f} | {speedup:.1f}x |")
    lines += [
        "",
        f"**Speed-up of the batched implementation: {best[3]:.0f}x** (batch {best[1]}; target >= "
        f"{TARGET_SPEEDUP:.0f}x: {'met' if best[3] >= TARGET_SPEEDUP else 'NOT met'}).",
        f"At {best[2]:.0f} examples/s, one epoch of the paper's 60,000 MNIST training images takes "
        f"about {epoch_hours:.2f} h of simulated training on this CPU (the 10,000 test images, 500 ms each, "
        "come on top). Small batches, which learn more per epoch with this rule, run slower per example: "
        "see the table.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
