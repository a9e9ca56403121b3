import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from dendnotes.plotting import RULE_COLORS, plot_seed_band, rule_color
from dendnotes.results import BENCHMARK_RULES, benchmark_groups, benchmark_summary, mean_sd


def run(rule, seed, accuracy, sizes=(784, 256, 256, 10), epochs=20, angle=True):
    metrics = {"test_accuracy": [0.1, accuracy], "train_accuracy": [0.1, accuracy + 0.01]}
    if angle:
        metrics |= {"update_angle_1": [90.0, 40.0 + seed], "update_angle_2": [90.0, 30.0]}
    return {"experiment": f"compare-{rule.lower()}", "dataset": "fashion-mnist", "epochs": epochs, "seed": seed,
            "config": {"rule": rule, "sizes": list(sizes), "lr": 0.1}, "history": {"epochs": [0, 1], "metrics": metrics}}


def test_groups_follow_the_benchmark_order_and_skip_other_protocols():
    results = [run("FA", 1, 0.8), run("FA", 0, 0.82), run("Readout only", 0, 0.7, angle=False),
               run("SD", 0, 0.8, sizes=(784, 500, 10))]
    groups = benchmark_groups(results)
    assert list(groups) == ["Readout only", "FA"]
    assert [r["seed"] for r in groups["FA"]] == [0, 1]
    with pytest.raises(ValueError, match="mix datasets/epochs"):
        benchmark_groups([run("FA", 0, 0.8), run("FA", 1, 0.8, epochs=10)])


def test_mean_sd_and_summary_table():
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_sd([5.0]) == (5.0, 0.0)
    table = benchmark_summary(benchmark_groups([run("FA", 0, 0.8), run("FA", 1, 0.9), run("Readout only", 0, 0.7, angle=False)]))
    lines = table.splitlines()
    assert lines[0].startswith("| rule | seeds |") and len(lines) == 4
    assert "| FA | 2 | 0.1 | 85.0 ± 7.1 |" in table and "| Readout only | 1 | 0.1 | 70.0 ± 0.0 |" in table
    assert lines[2].endswith("| - | - |")


def test_every_benchmark_rule_has_one_distinct_colour():
    assert set(BENCHMARK_RULES) <= set(RULE_COLORS)
    assert len(set(RULE_COLORS.values())) == len(RULE_COLORS)
    assert rule_color("BP") == RULE_COLORS["BP"]
    with pytest.raises(KeyError, match="no colour for rule"):
        rule_color("nope")


def test_seed_band_draws_mean_and_band_and_checks_shapes():
    fig, ax = plt.subplots()
    plot_seed_band(ax, [0, 1, 2], [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]], color="C0", label="x")
    assert list(ax.lines[0].get_ydata()) == [1.0, 2.0, 3.0] and ax.lines[0].get_label() == "x (n=2)"
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match="curves must have shape"):
        plot_seed_band(ax, [0, 1], [[0.0, 1.0, 2.0]], color="C0", label="x")
    plt.close(fig)


def test_time_to_target_uses_the_first_epoch_where_the_seed_mean_reaches_it():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "rule_speed.py"
    spec = importlib.util.spec_from_file_location("rule_speed", path)
    rule_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rule_speed)
    runs = [{"history": {"epochs": [0, 1, 2, 3], "metrics": {"test_accuracy": curve}}}
            for curve in ([0.1, 0.7, 0.85, 0.9], [0.1, 0.8, 0.75, 0.9])]
    assert rule_speed.epochs_to_target(runs, 0.8) == 2  # epoch 1: mean 0.75; epoch 2: 0.8
    assert rule_speed.epochs_to_target(runs, 0.95) is None
    rows = [{"experiment": "compare-x", "seconds_per_epoch": 3.0}, {"experiment": "compare-y", "seconds_per_epoch": 1.0}]
    rule_speed.add_time_to_target(rows, {"compare-x": [{**runs[0], "epochs": 3}]}, 0.8)
    assert rows[0]["epochs_to_target"] == 2 and rows[0]["seconds_to_target"] == 6.0 and rows[0]["seeds"] == 1
    assert rows[1]["seconds_to_target"] is None and rows[1]["seeds"] == 0


def test_rule_cost_table_marks_a_target_never_reached():
    from dendnotes.results import rule_cost_table

    row = {"rule": "BP", "experiment": "compare-bp", "seconds_per_epoch": 3.0, "ratio_to_bp": 1.0, "seeds": 5,
           "committed_epochs": 20, "epochs_to_target": 5, "seconds_to_target": 15.0}
    table = rule_cost_table([row, {**row, "rule": "NP", "epochs_to_target": None, "seconds_to_target": None}], 0.84)
    lines = table.splitlines()
    assert lines[0].endswith("| epochs to 84% | time to 84% (s) |") and len(lines) == 4
    assert lines[2] == "| BP | compare-bp | 3.00 | 1.0 | 5 seed(s) x 20 epochs | 5 | 15 |"
    assert lines[3].endswith("| not reached | - |")
