"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A reader never sees a half-written file, and a killed process leaves either the old file or the
new one (plus, at worst, a stray ``.tmp`` file that is ignored and overwritten).
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(path: Path, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the temporary files a killed writer of ``path`` left behind.

    Only this module's own temporaries of ``path`` (``.<name>.<random>.tmp`` beside it) older
    than ``max_age_s`` are removed, so writers still in flight keep theirs.

    Returns:
        The files removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed.append(tmp)
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    _atomic(path, lambda f: np.savez(f, **arrays))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    _atomic(path, lambda f: np.save(f, array))


class NpyRowWriter:
    """Stream rows into a ``.npy`` file that appears atomically, complete, at :meth:`commit`.

    Rows go into a memory-mapped temporary file next to ``path``
    (``np.lib.format.open_memmap``), created at the first :meth:`write` (when the row width is
    known); :meth:`commit` keeps the chosen rows, in order, and renames the file into place.
    Memory stays flat in the number of rows. Use as a context manager: leaving the block
    without a commit (an error) removes the temporary files.

    Args:
        path: The ``.npy`` file to write.
        rows: Number of rows the writer accepts (positions ``0 .. rows-1``).
        dtype: Element type.
    """

    def __init__(self, path: Path, rows: int, dtype=np.float32) -> None:
        self.path = Path(path)
        self.rows = rows
        self.dtype = np.dtype(dtype)
        remove_stale_temps(self.path)  # what a killed earlier writer left
        self._temps: list[Path] = []
        self._array: np.memmap | None = None

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._release()

    def _temp(self, shape: tuple[int, int]) -> np.memmap:
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        os.close(fd)
        self._temps.append(Path(tmp))
        return np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=shape)

    def write(self, positions: np.ndarray, block: np.ndarray) -> None:
        """Store ``block[i]`` as row ``positions[i]``."""
        if self._array is None:
            self._array = self._temp((self.rows, block.shape[1]))
        self._array[np.asarray(positions)] = block

    def commit(self, keep: list[int], chunk: int = 4096) -> None:
        """Keep rows ``keep`` (in that order) and rename the file to ``path``."""
        if self._array is None:
            raise ValueError("no rows were written")
        source, final = self._array, self._array
        if list(keep) != list(range(self.rows)):
            final = self._temp((len(keep), source.shape[1]))
            for lo in range(0, len(keep), chunk):
                final[lo : lo + chunk] = source[keep[lo : lo + chunk]]
        final.flush()
        with open(final.filename, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(final.filename, self.path)
        self._temps.remove(Path(final.filename))

    def _release(self) -> None:
        self._array = None
        for tmp in self._temps:
            tmp.unlink(missing_ok=True)
        self._temps.clear()
