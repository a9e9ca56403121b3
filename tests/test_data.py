"""Tests for dendnotes.data: the built-in datasets, the IDX parser and the MNIST download."""

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import torch

from dendnotes import data

MNIST_NAMES = data.IDX_FILES


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode ``array`` as an (uncompressed) IDX file."""
    dtype = {0x08: ">u1", 0x0B: ">i2"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_gz(path: Path, payload: bytes) -> str:
    """Write ``payload`` gzipped (deterministically) to ``path``; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = gzip.compress(payload, mtime=0)
    path.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest()


def write_fake_split(directory: Path, n_train: int = 6, n_test: int = 4, seed: int = 0):
    """Four small IDX .gz files in ``directory``; returns (arrays, sha256 by file name)."""
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=n_train, dtype=np.uint8),
        rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=n_test, dtype=np.uint8),
    )
    digests = {name: write_gz(directory / name, idx_bytes(a)) for name, a in zip(MNIST_NAMES, arrays)}
    return arrays, digests


def assert_matches_fake(loaded, arrays):
    x_train, y_train, x_test, y_test = loaded
    images_train, labels_train, images_test, labels_test = arrays
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert x_train.shape == (len(images_train), 784) and x_test.shape == (len(images_test), 784)
    np.testing.assert_allclose(x_train.numpy(), images_train.reshape(-1, 784) / 255, rtol=1e-6)
    np.testing.assert_allclose(x_test.numpy(), images_test.reshape(-1, 784) / 255, rtol=1e-6)
    assert y_train.tolist() == labels_train.tolist()
    assert y_test.tolist() == labels_test.tolist()


def check_standard(loaded, n_train, n_test, dim, n_classes):
    x_train, y_train, x_test, y_test = loaded
    assert x_train.shape == (n_train, dim) and x_test.shape == (n_test, dim)
    assert y_train.shape == (n_train,) and y_test.shape == (n_test,)
    for x in (x_train, x_test):
        assert x.dtype == torch.float32 and x.device.type == "cpu"
        assert x.min() >= 0 and x.max() <= 1
        assert x.max() == 1  # pixels were scaled by the true maximum, not by something larger
    for y in (y_train, y_test):
        assert y.dtype == torch.int64
        assert set(y.unique().tolist()) == set(range(n_classes))


def leftovers(directory: Path):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------- built-in datasets


def test_dataset_names():
    assert data.DATASETS == ("xor", "digits", "mnist-5k", "fashion-mnist", "mnist")
    for name in data.DATASETS:
        assert f'``"{name}"``' in data.__doc__


def test_xor_is_the_truth_table():
    x_train, y_train, x_test, y_test = data.load("xor")
    assert x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y_train.tolist() == [0, 1, 1, 0]
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert torch.equal(x_train, x_test) and torch.equal(y_train, y_test)
    x_train[0, 0] = 5.0  # train and test must not share storage
    assert x_test[0, 0] == 0


def test_digits_split_is_stratified():
    from sklearn.datasets import load_digits

    loaded = data.load("digits")
    check_standard(loaded, 1437, 360, 64, 10)
    _, y_train, _, y_test = loaded
    totals = np.bincount(load_digits().target)
    assert (np.bincount(y_train.numpy()) + np.bincount(y_test.numpy()) == totals).all()
    assert np.abs(np.bincount(y_test.numpy()) - 0.2 * totals).max() <= 1


def test_mnist_5k_is_shuffled_stratified_and_disjoint():
    loaded = data.load("mnist-5k")
    check_standard(loaded, 4000, 1000, 784, 10)
    x_train, y_train, x_test, y_test = loaded
    assert len(set(y_train[:100].tolist())) >= 8  # the source file is sorted by label
    assert np.bincount(y_train.numpy()).tolist() == [400] * 10
    assert np.bincount(y_test.numpy()).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in x_train.numpy()}
    assert not any(row.tobytes() in train_rows for row in x_test.numpy())


@pytest.mark.parametrize("name", ["xor", "digits", "mnist-5k"])
def test_loading_is_deterministic_and_returns_fresh_tensors(name):
    first = data.load(name)
    second = data.load(name)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    first[0].fill_(0.5)
    assert not torch.equal(first[0], second[0])
    assert torch.equal(data.load(name)[0], second[0])


def test_fashion_mnist_from_the_debian_package():
    loaded = data.load("fashion-mnist")
    check_standard(loaded, 60000, 10000, 784, 10)
    assert np.bincount(loaded[1].numpy()).tolist() == [6000] * 10
    assert np.bincount(loaded[3].numpy()).tolist() == [1000] * 10


def test_fashion_mnist_prefers_data_dir(tmp_path):
    arrays, _ = write_fake_split(tmp_path / "fashion-mnist")
    assert_matches_fake(data.load("fashion-mnist", data_dir=tmp_path), arrays)


def test_fashion_mnist_honours_dendnotes_data(tmp_path, monkeypatch):
    arrays, _ = write_fake_split(tmp_path / "fashion-mnist", seed=3)
    monkeypatch.setenv("DENDNOTES_DATA", str(tmp_path))
    assert_matches_fake(data.load("fashion-mnist"), arrays)


def test_fashion_mnist_missing_everywhere(tmp_path, monkeypatch):
    system_dir = tmp_path / "system"
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", system_dir)
    with pytest.raises(data.DataNotFoundError) as info:
        data.load("fashion-mnist", data_dir=tmp_path / "cache")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "cache" / "fashion-mnist") in message and str(system_dir) in message
    assert "train-images-idx3-ubyte.gz" in message


def test_fashion_mnist_partial_data_dir_falls_back_to_complete_system_dir(tmp_path, monkeypatch):
    arrays, _ = write_fake_split(tmp_path / "system", seed=4)
    write_fake_split(tmp_path / "cache" / "fashion-mnist", seed=5)
    (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    assert_matches_fake(data.load("fashion-mnist", data_dir=tmp_path / "cache"), arrays)


# ---------------------------------------------------------------- bad arguments


def test_unknown_name_lists_names_and_suggests():
    with pytest.raises(data.UnknownDatasetError) as info:
        data.load("fashion_mnist")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert all(name in message for name in data.DATASETS)
    assert "Did you mean 'fashion-mnist'?" in message
    with pytest.raises(data.UnknownDatasetError, match="Did you mean 'mnist-5k'"):
        data.load("MNIST-5K")


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"name": 3}, "dataset name must be a str"),
        ({"name": "xor", "data_dir": 3}, "data_dir must be a path"),
        ({"name": "xor", "download": "no"}, "download must be a bool"),
    ],
)
def test_bad_argument_types(kwargs, problem):
    name = kwargs.pop("name")
    with pytest.raises(TypeError, match=problem):
        data.load(name, **kwargs)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DENDNOTES_DATA", raising=False)
    assert data.default_data_dir() == Path(platformdirs.user_cache_dir("dendnotes"))
    monkeypatch.setenv("DENDNOTES_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path


def test_import_touches_neither_network_nor_disk(tmp_path):
    target = tmp_path / "never-created"
    code = (
        "import sys\n"
        "def refuse(event, args):\n"
        "    if event.startswith(('socket.', 'urllib.')):\n"
        "        raise AssertionError(f'network used at import: {event}')\n"
        "sys.addaudithook(refuse)\n"
        "import dendnotes.data\n"
    )
    env = {**os.environ, "DENDNOTES_DATA": str(target), "DENDNOTES_MNIST_URL": "http://192.0.2.1/"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not target.exists()


# ---------------------------------------------------------------- IDX parser


def test_read_idx_round_trips_multibyte_big_endian(tmp_path):
    values = np.array([[-300, 2], [1000, -1]], dtype=np.int16)
    path = tmp_path / "shorts.idx"
    path.write_bytes(idx_bytes(values, type_code=0x0B))
    got = data.read_idx(path)
    assert got.dtype == np.int16 and got.tolist() == values.tolist()


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize(
    "payload, compress, problem",
    [
        (b"\x01\x00" + GOOD[2:], True, "bad IDX magic number"),
        (GOOD[:2] + b"\x07" + GOOD[3:], True, "unknown IDX data type code 0x07"),
        (GOOD[:3] + b"\x00", True, "zero dimensions"),
        (GOOD[:9], True, "header truncated"),
        (GOOD[:-1], True, "data length mismatch"),
        (GOOD + b"\x00", True, "data length mismatch"),
        (GOOD[:2], True, "too short"),
        (GOOD, False, "not a valid gzip file"),
        (gzip.compress(GOOD)[:-12], False, "not a valid gzip file"),
    ],
)
def test_malformed_idx_raises_naming_the_file(tmp_path, payload, compress, problem):
    path = tmp_path / "broken-idx3-ubyte.gz"
    if compress:
        write_gz(path, payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(data.MalformedFileError, match=problem) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "file_name, replacement, problem",
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8), "holds 6 images but"),
        ("t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 2], dtype=np.uint8), "label 10"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((4, 784), dtype=np.uint8), "expected 3-d"),
        ("train-labels-idx1-ubyte.gz", np.zeros((6, 1), dtype=np.uint8), "expected 1-d"),
    ],
)
def test_inconsistent_idx_split_is_rejected(tmp_path, file_name, replacement, problem):
    write_fake_split(tmp_path / "fashion-mnist")
    write_gz(tmp_path / "fashion-mnist" / file_name, idx_bytes(replacement))
    with pytest.raises(data.MalformedFileError, match=problem):
        data.load("fashion-mnist", data_dir=tmp_path)


# ---------------------------------------------------------------- MNIST download


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory and records every requested path on the server."""

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


class ShortBodyHandler(CountingHandler):
    """Promises more bytes than it sends, like a connection cut mid-transfer."""

    def do_GET(self):
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\x00" * 100)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(monkeypatch):
    """Start local HTTP servers: ``serve(directory, handler)`` returns (base_url, requests)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("DENDNOTES_MNIST_URL", raising=False)
    started = []

    def start(directory: Path, handler=CountingHandler):
        bound = functools.partial(handler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
        server.requests = []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/mnist", server.requests

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Fake MNIST files under tmp_path/www/mnist, with their digests installed as the table."""
    arrays, digests = write_fake_split(tmp_path / "www" / "mnist", seed=1)
    monkeypatch.setattr(data, "MNIST_SHA256", digests)
    return arrays, digests


def test_mnist_sha256_table_is_well_formed():
    assert tuple(data.MNIST_SHA256) == data.IDX_FILES
    for digest in data.MNIST_SHA256.values():
        assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert data.MNIST_SHA256["t10k-labels-idx1-ubyte.gz"].startswith("f7ae60f9")


def test_mnist_download_end_to_end_then_cached(tmp_path, monkeypatch, serve, fake_mnist):
    arrays, _ = fake_mnist
    base_url, requests = serve(tmp_path / "www")
    monkeypatch.setenv("DENDNOTES_MNIST_URL", base_url)
    cache = tmp_path / "cache"
    first = data.load("mnist", data_dir=cache)
    assert_matches_fake(first, arrays)
    assert sorted(requests) == sorted(f"/mnist/{name}" for name in MNIST_NAMES)
    assert leftovers(cache / "mnist") == sorted(MNIST_NAMES)
    second = data.load("mnist", data_dir=cache)
    assert len(requests) == 4
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    third = data.load("mnist", data_dir=cache, download=False)
    assert all(torch.equal(a, b) for a, b in zip(first, third))


def test_mnist_download_honours_dendnotes_data_and_default_url(tmp_path, monkeypatch, serve, fake_mnist):
    arrays, _ = fake_mnist
    base_url, requests = serve(tmp_path / "www")
    monkeypatch.setattr(data, "MNIST_DEFAULT_URL", base_url)
    monkeypatch.setenv("DENDNOTES_DATA", str(tmp_path / "env-cache"))
    assert_matches_fake(data.load("mnist"), arrays)
    assert len(requests) == 4
    assert leftovers(tmp_path / "env-cache" / "mnist") == sorted(MNIST_NAMES)


def test_download_mnist_with_injected_url_and_checksums(tmp_path, serve):
    _, digests = write_fake_split(tmp_path / "www" / "mnist", seed=2)
    base_url, requests = serve(tmp_path / "www")
    target = data.download_mnist(tmp_path / "cache", base_url=base_url + "/", checksums=digests)
    assert target == tmp_path / "cache"
    assert leftovers(target) == sorted(MNIST_NAMES)
    for name, digest in digests.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest
    data.download_mnist(target, base_url=base_url, checksums=digests)
    assert len(requests) == 4


def test_checksum_mismatch_discards_the_download(tmp_path, serve):
    _, digests = write_fake_split(tmp_path / "www" / "mnist")
    base_url, _ = serve(tmp_path / "www")
    bad_name = "train-labels-idx1-ubyte.gz"
    wrong = dict(digests, **{bad_name: "0" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(data.ChecksumError) as info:
        data.download_mnist(cache, base_url=base_url, checksums=wrong)
    message = str(info.value)
    assert bad_name in message and "0" * 64 in message and digests[bad_name] in message
    left = leftovers(cache)
    assert bad_name not in left
    assert all(name in MNIST_NAMES for name in left)  # no temporary files either
    for name in left:
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == digests[name]


def test_corrupted_cache_file_is_detected(tmp_path, monkeypatch, serve, fake_mnist):
    base_url, requests = serve(tmp_path / "www")
    monkeypatch.setenv("DENDNOTES_MNIST_URL", base_url)
    cache = tmp_path / "cache"
    data.load("mnist", data_dir=cache)
    victim = cache / "mnist" / "t10k-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes() + b"junk")
    for download in (True, False):
        with pytest.raises(data.ChecksumError, match="delete it to download it again") as info:
            data.load("mnist", data_dir=cache, download=download)
        assert victim.name in str(info.value)
    assert len(requests) == 4


def test_download_false_with_missing_files(tmp_path, monkeypatch, serve, fake_mnist):
    base_url, requests = serve(tmp_path / "www")
    monkeypatch.setenv("DENDNOTES_MNIST_URL", base_url)
    with pytest.raises(data.DataNotFoundError) as info:
        data.load("mnist", data_dir=tmp_path / "cache", download=False)
    message = str(info.value)
    assert "DENDNOTES_MNIST_URL" in message and str(tmp_path / "cache" / "mnist") in message
    assert all(name in message for name in MNIST_NAMES)
    assert requests == []
    assert not (tmp_path / "cache").exists()


def test_http_404_leaves_nothing_behind(tmp_path, serve, fake_mnist):
    _, digests = fake_mnist
    (tmp_path / "www" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    base_url, _ = serve(tmp_path / "www")
    cache = tmp_path / "cache"
    with pytest.raises(data.DownloadError) as info:
        data.download_mnist(cache, base_url=base_url, checksums=digests)
    message = str(info.value)
    assert "HTTP 404" in message and "t10k-images-idx3-ubyte.gz" in message
    assert "DENDNOTES_MNIST_URL" in message and str(cache) in message
    assert "t10k-images-idx3-ubyte.gz" not in leftovers(cache)
    assert all(name in MNIST_NAMES for name in leftovers(cache))


def test_connection_refused_gives_manual_instructions(tmp_path, monkeypatch, fake_mnist):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DENDNOTES_MNIST_URL", f"http://127.0.0.1:{port}/")
    cache = tmp_path / "cache"
    with pytest.raises(data.DownloadError) as info:
        data.load("mnist", data_dir=cache)
    message = str(info.value)
    assert "refused" in message.lower() and "is the network reachable?" in message
    assert "DENDNOTES_MNIST_URL" in message and str(cache / "mnist") in message
    assert all(name in message for name in MNIST_NAMES)  # every file still to fetch by hand
    assert leftovers(cache / "mnist") == []


def test_mnist_from_a_file_url(tmp_path, monkeypatch, fake_mnist):
    arrays, _ = fake_mnist
    monkeypatch.setenv("DENDNOTES_MNIST_URL", (tmp_path / "www" / "mnist").as_uri())
    assert_matches_fake(data.load("mnist", data_dir=tmp_path / "cache"), arrays)
    assert leftovers(tmp_path / "cache" / "mnist") == sorted(MNIST_NAMES)


def test_cut_off_transfer_leaves_nothing_behind(tmp_path, serve, fake_mnist):
    _, digests = fake_mnist
    base_url, requests = serve(tmp_path / "www", ShortBodyHandler)
    cache = tmp_path / "cache"
    with pytest.raises(data.DownloadError, match="cut off after 102 of 100000 bytes"):
        data.download_mnist(cache, base_url=base_url, checksums=digests)
    assert len(requests) == 1
    assert leftovers(cache) == []


def test_interrupted_download_leaves_nothing_behind(tmp_path, monkeypatch, serve, fake_mnist):
    _, digests = fake_mnist
    base_url, _ = serve(tmp_path / "www")

    class InterruptingProgress:
        def __init__(self, *args, **kwargs):
            self.seen = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.seen += n
            if self.seen > 64:
                raise KeyboardInterrupt

    monkeypatch.setattr(data, "tqdm", InterruptingProgress)
    monkeypatch.setattr(data, "_CHUNK_BYTES", 32)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        data.download_mnist(cache, base_url=base_url, checksums=digests)
    assert leftovers(cache) == []


def test_invalid_mnist_url(tmp_path, monkeypatch, fake_mnist):
    monkeypatch.setenv("DENDNOTES_MNIST_URL", "not-a-url")
    with pytest.raises(data.DownloadError, match="invalid URL"):
        data.load("mnist", data_dir=tmp_path)
    assert leftovers(tmp_path / "mnist") == []
