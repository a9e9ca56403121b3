import json
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


def test_a_run_writes_its_result(tmp_path):
    path = reproduce.run_experiment("compare-bp", epochs=1, seed=3, device="cpu", out=tmp_path,
                                    argv=["compare-bp", "--epochs", "1"])
    assert path.name == "compare-bp__mnist-5k__e1__seed3.json"
    result = json.loads(path.read_text())
    assert result["config"]["rule"] == "BP" and result["config"]["sizes"] == [784, 500, 10]
    assert result["history"]["epochs"] == [0, 1]
    assert result["final_test_accuracy"] == result["history"]["metrics"]["test_accuracy"][-1] > 0.8
    assert result["command"] == "python -m dendnotes.reproduce compare-bp --epochs 1"
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
