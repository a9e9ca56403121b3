import json
import math
import subprocess
import sys

import pytest
import torch

from dendnotes import reproduce, results


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dendnotes.reproduce", *args], capture_output=True, text=True, timeout=300)


def test_list_and_help_name_every_experiment():
    listing = run_cli("--list")
    helped = run_cli("--help")
    assert listing.returncode == 0 and helped.returncode == 0
    for name in reproduce.experiments():
        assert name in listing.stdout and name in helped.stdout
    assert "--dataset" in helped.stdout and "--device" in helped.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["no-such-experiment"], "unknown experiment 'no-such-experiment'"),
        (["compare-bp", "--dataset", "cifar"], "runs on mnist-5k, fashion-mnist, mnist, not 'cifar'"),
        (["compare-bp", "--epochs", "0"], "--epochs must be at least 1"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cuda_without_gpu_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert reproduce.main(["compare-bp", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no GPU" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_experiment_name_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2 and "name an experiment" in result.stderr


def small_grid(monkeypatch):
    monkeypatch.setattr(reproduce, "BENCHMARK_LR_GRID", (0.03, 0.3))
    monkeypatch.setattr(reproduce, "BENCHMARK_GRID_EPOCHS", 1)
    monkeypatch.setattr(reproduce, "BENCHMARK_GRID_EXTENSIONS", 0)
    monkeypatch.setattr(reproduce, "_SELECTED", {})


def test_a_run_writes_its_result(tmp_path, monkeypatch):
    small_grid(monkeypatch)
    path = reproduce.run_experiment("compare-bp", dataset="mnist-5k", epochs=1, seed=3, device="cpu", out=tmp_path,
                                    argv=["compare-bp", "--dataset", "mnist-5k", "--epochs", "1"])
    assert path.name == "compare-bp__mnist-5k__e1__seed3.json"
    result = json.loads(path.read_text())
    assert result["config"]["rule"] == "BP" and result["config"]["sizes"] == [784, 256, 256, 10]
    assert result["history"]["epochs"] == [0, 1]
    assert result["final_test_accuracy"] == result["history"]["metrics"]["test_accuracy"][-1] > 0.5
    assert result["command"] == "python -m dendnotes.reproduce compare-bp --dataset mnist-5k --epochs 1"
    assert {"platform", "torch", "cpu_count"} <= set(result["hardware"])
    assert result["dendnotes_version"] and result["wall_time_s"] > 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert results.read_result(path)["sha256"] == results.content_checksum(result)


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    fake = reproduce.Experiment("fake", "interrupted on purpose", interrupted, "mnist-5k", 1)
    monkeypatch.setattr(reproduce, "experiments", lambda: {"fake": fake})
    assert reproduce.main(["fake", "--out", str(tmp_path), "--device", "cpu"]) == 130
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path):
    with pytest.raises(TypeError):
        reproduce.write_json_atomically(tmp_path / "r.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []
    reproduce.write_json_atomically(tmp_path / "r.json", {"ok": 1})
    assert json.loads((tmp_path / "r.json").read_text()) == {"ok": 1}


def test_validation_split_holds_out_a_fixed_disjoint_part_of_the_training_set():
    x = torch.arange(60.0).reshape(30, 2)
    y = torch.arange(30)
    x_fit, y_fit, x_val, y_val = reproduce.validation_split(x, y, 5)
    assert len(y_val) == 5 and len(y_fit) == 25
    assert sorted(torch.cat([y_fit, y_val]).tolist()) == list(range(30))
    assert torch.equal(x_val[:, 0], 2.0 * y_val)
    assert torch.equal(reproduce.validation_split(x, y, 5)[3], y_val)
    with pytest.raises(ValueError, match="validation size"):
        reproduce.validation_split(x, y, 30)


def test_learning_rate_is_chosen_on_validation_accuracy_and_recorded(monkeypatch):
    small_grid(monkeypatch)
    recipe = reproduce.comparison_recipes()["readout"]
    selection = reproduce.select_learning_rate("readout", recipe, "mnist-5k", "cpu")
    curves = selection["validation_accuracy"]
    assert selection["grid"] == [0.03, 0.3] and set(curves) == {"0.03", "0.3"}
    assert selection["validation_size"] == 666 and all(len(c) == 2 for c in curves.values())
    assert selection["chosen_lr"] == max((c[-1], float(lr)) for lr, c in curves.items())[1]
    assert reproduce.select_learning_rate("readout", recipe, "mnist-5k", "cpu") is selection


def test_a_diverging_rate_is_recorded_and_skipped(monkeypatch):
    small_grid(monkeypatch)
    monkeypatch.setattr(reproduce, "BENCHMARK_LR_GRID", (0.1, 1e6))
    selection = reproduce.select_learning_rate("bp", reproduce.comparison_recipes()["bp"], "mnist-5k", "cpu")
    assert selection["validation_accuracy"]["1000000.0"] is None and selection["chosen_lr"] == 0.1


def test_neighbouring_rates_follow_the_one_three_ten_series():
    assert [reproduce.neighbouring_rate(0.003, -1), reproduce.neighbouring_rate(1.0, 1)] == [0.001, 3.0]
    assert [reproduce.neighbouring_rate(0.3, 1), reproduce.neighbouring_rate(0.1, -1)] == [1.0, 0.03]
    with pytest.raises(ValueError, match="1-3-10"):
        reproduce.neighbouring_rate(0.5, 1)


def test_the_grid_grows_past_an_end_until_the_best_rate_is_inside(monkeypatch):
    small_grid(monkeypatch)
    monkeypatch.setattr(reproduce, "BENCHMARK_LR_GRID", (0.3, 1.0))
    monkeypatch.setattr(reproduce, "BENCHMARK_GRID_EXTENSIONS", 5)
    tried = []

    def fake_train(recipe, split, lr, epochs, seed, device, progress=True):
        tried.append(lr)
        if lr == 0.01:
            raise reproduce.TrainingDivergedError("diverged on purpose")
        return {"test_accuracy": [0.1, 1 - abs(math.log10(lr / 0.03))]}, None

    monkeypatch.setattr(reproduce, "train_recipe", fake_train)
    selection = reproduce.select_learning_rate("bp", reproduce.comparison_recipes()["bp"], "mnist-5k", "cpu")
    assert tried == [0.3, 1.0, 0.1, 0.03, 0.01]
    assert selection["grid"] == [0.01, 0.03, 0.1, 0.3, 1.0] and selection["base_grid"] == [0.3, 1.0]
    assert selection["chosen_lr"] == 0.03 and selection["validation_accuracy"]["0.01"] is None


def test_every_benchmark_rule_is_an_experiment_on_the_same_sizes():
    names = {f"compare-{key}" for key in reproduce.comparison_recipes()}
    assert {"compare-readout", "compare-ep", "compare-dfa"} <= names <= set(reproduce.experiments())


def test_benchmark_recipes_train_on_the_shared_sizes_and_record_angles():
    from dendnotes.data import load

    x, y, x_test, y_test = load("digits")
    digits = (x[:320], y[:320], x_test[:100], y_test[:100])
    recipes = reproduce.comparison_recipes()
    history, rule = reproduce.train_recipe(recipes["dfa"], digits, 0.1, 1, 0, "cpu", progress=False)
    assert rule.net.sizes == [64, 256, 256, 10]
    assert {"update_angle_1", "update_angle_2", "weight_feedback_angle_2"} <= set(history.metrics)
    history, rule = reproduce.train_recipe(recipes["ep"], digits, 0.1, 1, 0, "cpu", progress=False)
    assert rule.name == "EP" and rule.net.sizes == [64, 256, 256, 10] and "update_angle_1" not in history.metrics
    assert history.final("train_loss") < 0.5 * history["train_loss"][0]
