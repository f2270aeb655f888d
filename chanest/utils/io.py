"""Small file helpers: atomic writes, so a failed stage never leaves a half-written output."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

#: The 116-byte text header of MAT v5 files written here: fixed, so that the same PDPs give the
#: same bytes (scipy writes the creation time there, which would change DVC's hash on every run).
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by chanest".ljust(116)


class atomic_path:
    """Context manager yielding a temp path beside ``path``; renamed onto it only on success.

    >>> with atomic_path("out.json") as tmp:
    ...     Path(tmp).write_text("{}")
    """

    def __init__(self, path: str | os.PathLike, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = self.path.suffix if suffix is None else suffix

    def __enter__(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=f".tmp{self.suffix}", dir=self.path.parent
        )
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text``, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (hex)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_mat(path: str | os.PathLike, variables: dict[str, Any]) -> None:
    """``scipy.io.savemat`` with a fixed header (byte-identical output for identical data),
    atomically."""
    import scipy.io  # here: ~0.2 s that a stage which writes no .mat file does not pay

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    data = buf.getvalue()
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(MAT_HEADER + data[len(MAT_HEADER):])


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` (read it with ``np.load``), but byte-identical for identical arrays:
    the zip entries carry a fixed timestamp instead of the current time. Atomic."""
    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, array in arrays.items():
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), entry.getvalue())


def write_csv(df, path: str | os.PathLike) -> None:
    """A pandas frame as CSV (no index), atomically."""
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)
