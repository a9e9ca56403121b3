"""Writing files so that nothing is ever half-written, and nothing is overwritten by accident."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# Files the package writes are readable by everyone, like the downloads (mkstemp makes them 0600).
FILE_MODE = 0o644


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove it writable by creating a file in it; return it.

    Raises ``OSError`` with a one-line message naming the folder, so that a long run can
    fail at its start instead of at its end."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder; choose another output folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise type(err)(err.errno, f"cannot write into {folder} ({err.strerror}); "
                        "make it writable or choose another output folder") from err
    return folder


def write_text_atomically(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder: never half a file.

    With ``overwrite=False`` the file is published with a hard link, which fails with
    ``FileExistsError`` if ``path`` exists by then: of two writers of one name, one
    succeeds and the other is told."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_json_atomically(path: str | os.PathLike, payload: dict, *, overwrite: bool = True) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (see ``write_text_atomically``)."""
    write_text_atomically(path, json.dumps(payload, indent=1) + "\n", overwrite=overwrite)
