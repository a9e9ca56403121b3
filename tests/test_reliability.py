"""The 50 bad inputs and faults that the reliability review (commit 24bdcfd) found handled badly.

One test (or one parametrized case) per row of the review's tables, in its order, so the count
of well-handled cases can be rerun: 43 rows here; the other 7 (the exercise checks' weaknesses)
belong to the reader's-path issue. Network tests use a server on 127.0.0.1 only; every test
is bounded in time. Permission tests drop root's override of file permissions while they run.
"""

import contextlib
import ctypes
import http.server
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from dendnotes import coursework, data, reproduce, results
from dendnotes.feedback_alignment import make_rule
from dendnotes.files import write_json_atomically
from dendnotes.mlp import MLP
from dendnotes.training import DeviceUnavailableError, TrainingDivergedError, fit
from test_data import idx_bytes, write_fake_split, write_gz

ROOT = Path(__file__).resolve().parents[1]
# A committed result of the shared benchmark (whatever its epoch count), seed 0.
COMMITTED = sorted((ROOT / "results").glob("compare-bp__fashion-mnist__e*__seed0.json"))[0]
COMMITTED_EPOCHS = COMMITTED.name.split("__")[2]
LABELS = "t10k-labels-idx1-ubyte.gz"


@contextlib.contextmanager
def permissions_enforced():
    """Make permission bits bind root too: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from
    this thread's effective capabilities for the block (nothing to do for other users)."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    caps = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2 words
    assert libc.capget(header, caps) == 0, os.strerror(ctypes.get_errno())
    saved = list(caps)
    caps[0] &= ~((1 << 1) | (1 << 2))
    assert libc.capset(header, caps) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        caps[:] = saved
        libc.capset(header, caps)


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class EndlessHandler(http.server.BaseHTTPRequestHandler):
    """200 without Content-Length, then ``server.block`` bytes every ``server.interval`` s, for at most 20 s."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        stop = time.monotonic() + 20
        with contextlib.suppress(OSError):
            while time.monotonic() < stop:
                self.wfile.write(b"\x00" * self.server.block)
                self.wfile.flush()
                time.sleep(self.server.interval)

    def log_message(self, *args):
        pass


class HugeLengthHandler(EndlessHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(b"\x00" * 10)


@contextlib.contextmanager
def loopback_server(handler, block=1, interval=0.0):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.block, server.interval = block, interval
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def parts(folder: Path):
    return sorted(p.name for p in folder.glob(".*.part")) if folder.exists() else []


# ---------------------------------------------------------------- 1. data (8 rows)


def test_empty_data_dir_is_an_error_not_the_current_folder():
    with pytest.raises(ValueError, match="data_dir is an empty path"):
        data.load("mnist", data_dir="")


def test_trickling_server_hits_the_overall_deadline(tmp_path, no_proxy):
    with loopback_server(EndlessHandler, block=1, interval=0.05) as url:
        start = time.monotonic()
        with pytest.raises(data.DownloadError, match="longer than its deadline"):
            data.download_mnist(tmp_path, base_url=url, checksums={LABELS: "0" * 64}, timeout=2, deadline=1)
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_sigterm_mid_download_leaves_no_part_file(tmp_path, no_proxy):
    script = ("import sys; from dendnotes import data; "
              f"data.download_mnist(sys.argv[1], base_url=sys.argv[2], checksums={{{LABELS!r}: '0' * 64}}, sizes={{}})")
    with loopback_server(EndlessHandler, block=1, interval=0.05) as url:
        child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), url],
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not parts(tmp_path) and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.05)
            assert parts(tmp_path), "the download never started"
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == -signal.SIGTERM
        finally:
            child.kill()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT], ids=["SIGHUP", "SIGQUIT"])
def test_other_signals_remove_the_part_file_and_reach_the_callers_handler(tmp_path, no_proxy, signum):
    received = []
    previous = signal.signal(signum, lambda s, frame: received.append(s))
    try:
        with loopback_server(EndlessHandler, block=1, interval=0.05) as url:
            sender = threading.Thread(target=lambda: (time.sleep(0.5), os.kill(os.getpid(), signum)))
            sender.start()
            with pytest.raises(data.DownloadError, match=f"download interrupted by {signal.Signals(signum).name}"):
                data.download_mnist(tmp_path, base_url=url, checksums={LABELS: "0" * 64}, sizes={}, deadline=20)
            sender.join()
    finally:
        signal.signal(signum, previous)
    assert received == [signum] and list(tmp_path.iterdir()) == []


def test_part_files_of_dead_processes_are_removed_by_the_next_run(tmp_path, no_proxy):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{LABELS}.pid{dead.pid}.abc123.part"
    old_format = tmp_path / f".{LABELS}.xyz789.part"
    live = tmp_path / f".{LABELS}.pid{os.getpid()}.def456.part"
    for part in (stale, old_format, live):
        part.write_bytes(b"partial")
    os.utime(old_format, (0, 0))
    _, digests = write_fake_split(tmp_path / "www")
    data.download_mnist(tmp_path, base_url=(tmp_path / "www").as_uri(), checksums={LABELS: digests[LABELS]})
    assert parts(tmp_path) == [live.name]  # a download still running in another process is left alone


@pytest.mark.parametrize("sizes, name, problem", [
    (None, LABELS, "more than the 4542 of t10k-labels"),  # the known size of MNIST's file
    ({"x.gz": 200_000}, "x.gz", "more than the 200000 of x.gz"),
])
def test_endless_stream_stops_at_the_size_cap(tmp_path, no_proxy, sizes, name, problem):
    with loopback_server(EndlessHandler, block=1 << 16) as url:
        with pytest.raises(data.DownloadError, match=problem):
            data.download_mnist(tmp_path, base_url=url, checksums={name: "0" * 64}, sizes=sizes)
        with loopback_server(HugeLengthHandler) as huge:
            with pytest.raises(data.DownloadError, match=f"announces {10**12} bytes"):
                data.download_mnist(tmp_path, base_url=huge, checksums={name: "0" * 64}, sizes=sizes)
    assert list(tmp_path.iterdir()) == []


def test_idx_dimensions_whose_product_overflows(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">4I", 1 << 16, 1 << 16, 1 << 16, 1 << 16))
    with pytest.raises(data.MalformedFileError, match=f"{path}: data length mismatch"):
        data.read_idx(path)


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_unreadable_data_dir(tmp_path, monkeypatch, name):
    arrays, _ = write_fake_split(tmp_path / "system")
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    locked = tmp_path / "locked"
    write_fake_split(locked / "fashion-mnist")
    monkeypatch.setenv("DENDNOTES_DATA", str(locked))
    locked.chmod(0)
    try:
        with permissions_enforced():
            if name == "fashion-mnist":  # the readable system copy is used
                x_train = data.load(name)[0]
                assert torch.equal(x_train, torch.from_numpy(arrays[0].reshape(6, -1) / np.float32(255)))
            else:
                for download in (True, False):
                    with pytest.raises(PermissionError, match=rf"cannot use {locked}/mnist .*set \$DENDNOTES_DATA"):
                        data.load(name, download=download)
    finally:
        locked.chmod(0o755)


def test_read_only_mnist_folder_names_the_folder(tmp_path, no_proxy):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist").chmod(0o555)
    try:
        with permissions_enforced(), pytest.raises(data.DownloadError, match=rf"cannot write into {tmp_path}/mnist"):
            data.load("mnist", data_dir=tmp_path)
    finally:
        (tmp_path / "mnist").chmod(0o755)
    assert list((tmp_path / "mnist").iterdir()) == []


# ---------------------------------------------------------------- 2. python -m dendnotes.reproduce (6 rows)


@pytest.fixture
def fake_experiment(monkeypatch):
    """A registered experiment "fake" that trains nothing; returns the list of epochs it was run with."""
    calls = []

    def run(dataset, epochs, seed, device):
        calls.append(epochs)
        history = {"epochs": list(range(epochs + 1)), "metrics": {"test_accuracy": [0.5] * (epochs + 1)},
                   "wall_time": 0.01}
        return {"history": history, "config": {"rule": "FAKE"}}

    fake = reproduce.Experiment("fake", "trains nothing", run, "xor", 1, datasets=("xor",))
    monkeypatch.setattr(reproduce, "experiments", lambda: {"fake": fake})
    return calls


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_seed_out_of_range_is_one_line(capsys, tmp_path, fake_experiment):
    for seed in (str(2**64), "-1"):
        assert reproduce.main(["fake", "--seed", seed, "--out", str(tmp_path), "--device", "cpu"]) == 2
        one_line_error(capsys, "--seed must be an integer from 0 to 2**32 - 1")
    assert fake_experiment == []


@pytest.mark.parametrize("kind", ["file", "read-only folder"])
def test_out_is_checked_before_training(capsys, tmp_path, fake_experiment, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
    else:
        out.mkdir(mode=0o555)
    try:
        with permissions_enforced():
            assert reproduce.main(["fake", "--out", str(out), "--device", "cpu"]) == 2
    finally:
        if kind != "file":
            out.chmod(0o755)
    one_line_error(capsys, str(out))
    assert fake_experiment == []  # nothing was trained


def test_two_writers_of_one_name_cannot_both_succeed(tmp_path, capsys, fake_experiment, monkeypatch):
    target = tmp_path / "r.json"
    outcomes = []

    def write(i):
        try:
            write_json_atomically(target, {"writer": i}, overwrite=False)
            outcomes.append(i)
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == 8 and len(winners) == 1
    assert json.loads(target.read_text()) == {"writer": winners[0]}

    # A run whose result name is taken while it trains keeps its own result beside it and says so.
    path = tmp_path / results.result_name("fake", "xor", 1, 0)
    original = reproduce.experiments()["fake"].run

    def other_run_finishes_first(**kwargs):
        path.write_text("the other run's result")
        return original(**kwargs)

    monkeypatch.setattr(reproduce, "experiments", lambda: {
        "fake": reproduce.Experiment("fake", "trains nothing", other_run_finishes_first, "xor", 1, datasets=("xor",))})
    assert reproduce.main(["fake", "--out", str(tmp_path), "--device", "cpu"]) == 2
    one_line_error(capsys, "written by another run while this one trained", "unpublished")
    assert path.read_text() == "the other run's result"
    kept = list(tmp_path.glob(f"{path.name}.unpublished-*"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["experiment"] == "fake"


def test_a_smoke_run_never_replaces_a_result(tmp_path, capsys, fake_experiment):
    full = reproduce.run_experiment("fake", epochs=10, device="cpu", out=tmp_path)
    committed = full.read_bytes()
    smoke = reproduce.run_experiment("fake", epochs=1, device="cpu", out=tmp_path)
    assert (full.name, smoke.name) == ("fake__xor__e10__seed0.json", "fake__xor__e1__seed0.json")
    assert full.read_bytes() == committed
    with pytest.raises(results.ResultFileError, match="fake on xor mix epoch counts .*move the others out"):
        results.load_results(tmp_path)  # chapter 7 does not silently pick one
    assert reproduce.main(["fake", "--epochs", "10", "--out", str(tmp_path), "--device", "cpu"]) == 2
    one_line_error(capsys, "exists", "--force")
    assert fake_experiment == [10, 1] and full.read_bytes() == committed
    assert reproduce.main(["fake", "--epochs", "10", "--out", str(tmp_path), "--device", "cpu", "--force"]) == 0
    assert fake_experiment == [10, 1, 10] and results.read_result(full)["command"].endswith("--force")


def test_result_files_are_readable_by_everyone(tmp_path, fake_experiment):
    path = reproduce.run_experiment("fake", device="cpu", out=tmp_path)
    assert path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- 3. fit (14 rows)


def toy_problem(n=96, dim=8, classes=3):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, dim, generator=g), torch.randint(0, classes, (n,), generator=g)
    return make_rule("BP", MLP([dim, 16, classes], activation="tanh", seed=0)), [x, y, x.clone(), y.clone()]


@pytest.mark.parametrize("where, value", [(0, math.nan), (0, math.inf), (2, math.nan)])
def test_nan_or_inf_in_the_data_is_named_at_entry(where, value):
    rule, data_ = toy_problem()
    data_[where][5, 3] = value
    name = ("x_train", "", "x_test")[where]
    with pytest.raises(ValueError, match=f"{name} holds 1 NaN or infinite values \\(the first in example 5\\)"):
        fit(rule, data_, epochs=1, progress=False)


@pytest.mark.parametrize("lr", [1e3, 1e6, 1e12])
def test_finite_blow_up_is_divergence(lr):
    rule, data_ = toy_problem()
    with pytest.raises(TrainingDivergedError, match=r"above .* \(100 x its first value\)\. Try a smaller learning rate"):
        fit(rule, data_, epochs=5, lr=lr, progress=False)


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_set(split):
    rule, data_ = toy_problem()
    i = 0 if split == "train" else 2
    data_[i], data_[i + 1] = data_[i][:0], data_[i + 1][:0]
    with pytest.raises(ValueError, match=f"the {split} set is empty"):
        fit(rule, data_, epochs=1, progress=False)


@pytest.mark.parametrize("change, error, message", [
    (lambda d, kw: d.__setitem__(0, d[0].double()), ValueError, r"x_train is torch.float64 but the network computes in torch.float32"),
    (lambda d, kw: d.__setitem__(0, d[0].numpy()), ValueError, "x_train must be a torch.Tensor, got ndarray; convert it with torch.from_numpy"),
    (lambda d, kw: kw.update(lr="0.1"), ValueError, "lr must be a number, got '0.1'"),
    (lambda d, kw: kw.update(batch_size=1.5), ValueError, "batch_size must be an integer, got 1.5"),
    (lambda d, kw: kw.update(epochs=2.5), ValueError, "epochs must be an integer, got 2.5"),
    (lambda d, kw: kw.update(device="tpu"), DeviceUnavailableError, "unsupported device 'tpu'; use 'cpu' or 'cuda'"),
], ids=["float64", "numpy", "lr-string", "batch-float", "epochs-float", "device-tpu"])
def test_wrong_types_get_one_line_errors(change, error, message):
    rule, data_ = toy_problem()
    kwargs = {"epochs": 1, "progress": False}
    change(data_, kwargs)
    with pytest.raises(error, match=message) as info:
        fit(rule, data_, **kwargs)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- 4. results reader (13 rows)


def committed_copy(folder: Path, edit=None) -> Path:
    """The committed BP result copied into ``folder``, its JSON passed through ``edit``."""
    result = json.loads(COMMITTED.read_text())
    if edit is not None:
        result = edit(result)
    path = folder / COMMITTED.name
    path.write_text(json.dumps(result, indent=1))
    return path


def set_final(value):
    def edit(r):
        r["final_test_accuracy"] = r["history"]["metrics"]["test_accuracy"][-1] = value
        return r
    return edit


def test_committed_results_are_consistent():
    assert len(results.load_results(ROOT / "results")) == len(list((ROOT / "results").glob("*.json")))


@pytest.mark.parametrize("edit, message", [
    (set_final(0.99), "content does not match its checksum"),
    (set_final(1.7), r"test accuracy 1.7 is not a number in \[0, 1\]"),
    (lambda r: {**r, "epochs": r["epochs"] + 1}, "but its history has"),
    (lambda r: None, "holds a JSON NoneType, not an object"),
    (lambda r: {**r, "history": {"epochs": r["history"]["epochs"]}}, "lacks 'history.metrics.test_accuracy'"),
    (lambda r: {**r, "config": {}}, "lacks 'config.rule'"),
    (lambda r: {**r, "hardware": {}}, "lacks 'hardware.cpu_count'"),
    (lambda r: {**r, "history": {**r["history"], "metrics": {"test_accuracy": []}}}, "and 0 test accuracies"),
    (set_final(math.nan), r"test accuracy nan is not a number in \[0, 1\]"),
], ids=["final-and-history-0.99", "final-and-history-1.7", "epochs", "null", "no-metrics", "no-rule",
        "no-cpu-count", "empty-accuracy", "nan"])
def test_edited_or_incomplete_results_are_rejected_naming_the_file(tmp_path, edit, message):
    committed_copy(tmp_path, edit)
    with pytest.raises(results.ResultFileError, match=message) as info:
        results.load_results(tmp_path)
    assert COMMITTED.name in str(info.value)


@pytest.mark.parametrize("content", [b'{"experiment": "compare-bp", "data', b"", b'{"rule": "\xff\xfe"}'],
                         ids=["truncated", "empty", "bad-utf8"])
def test_unreadable_json_names_the_file(tmp_path, content):
    (tmp_path / COMMITTED.name).write_bytes(content)
    with pytest.raises(results.ResultFileError, match=f"{COMMITTED.name}: not a valid JSON file"):
        results.load_results(tmp_path)


def test_duplicate_rule_files_are_rejected(tmp_path):
    copy = tmp_path / f"compare-bp-copy__fashion-mnist__{COMMITTED_EPOCHS}__seed0.json"
    shutil.copy(committed_copy(tmp_path), copy)
    with pytest.raises(results.ResultFileError, match=f"its content is the run compare-bp__fashion-mnist__{COMMITTED_EPOCHS}__seed0"):
        results.load_results(tmp_path)
    copy.unlink()
    other_seed = committed_copy(tmp_path, lambda r: {**r, "seed": 1})
    results.seal_file(other_seed)  # a genuine second run of the same rule, checksummed
    assert not other_seed.exists() and (tmp_path / f"compare-bp__fashion-mnist__{COMMITTED_EPOCHS}__seed1.json").exists()
    shutil.copy(COMMITTED, tmp_path)
    assert len(results.load_results(tmp_path)) == 2  # two seeds of one protocol: a benchmark's spread
    shortened = committed_copy(tmp_path, lambda r: {**r, "epochs": 1, "history": {
        "epochs": [0, 1], "metrics": {k: v[:2] for k, v in r["history"]["metrics"].items()}},
        "final_test_accuracy": r["history"]["metrics"]["test_accuracy"][1]})
    results.seal_file(shortened)  # a 1-epoch smoke run of the same experiment
    shutil.copy(COMMITTED, tmp_path)  # the smoke run's copy took the original's name before sealing
    with pytest.raises(results.ResultFileError, match="compare-bp on fashion-mnist mix epoch counts"):
        results.load_results(tmp_path)


def test_results_cli_checks_and_seals(tmp_path, capsys):
    unsealed = committed_copy(tmp_path, lambda r: {k: v for k, v in r.items() if k != "sha256"})
    assert results.main(["check", str(tmp_path)]) == 2
    one_line_error(capsys, "has no sha256 checksum", "python -m dendnotes.results seal")
    assert results.main(["seal", str(unsealed)]) == 0
    assert results.main(["check", str(tmp_path)]) == 0
    assert unsealed.read_bytes() == COMMITTED.read_bytes()


# ---------------------------------------------------------------- 5. coursework (2 rows)


def tiny_book(folder: Path) -> Path:
    folder.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter\n\n```{solution-start} ex-a\n```"),
        nbformat.v4.new_code_cell("def answer():\n    return 42"),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
    ])
    nbformat.write(notebook, folder / "01_chapter.ipynb")
    return folder


def test_read_only_student_folder_writes_nothing(tmp_path, capsys):
    book, out = tiny_book(tmp_path / "book"), tmp_path / "out"
    (out / "student").mkdir(parents=True, mode=0o555)
    try:
        with permissions_enforced():
            assert coursework.main(["student", str(out), "--book", str(book)]) == 2
    finally:
        (out / "student").chmod(0o755)
    one_line_error(capsys, f"cannot write into {out / 'student'}")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) in (["student"], ["instructor", "student"])


def test_book_inside_the_output_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    book = tiny_book(out / "student")
    source = (book / "01_chapter.ipynb").read_bytes()
    for _ in range(2):
        assert coursework.main(["student", str(out), "--book", str(book)]) == 2
        one_line_error(capsys, "would overwrite the source notebooks")
    assert (book / "01_chapter.ipynb").read_bytes() == source
    assert not (out / "instructor").exists()
