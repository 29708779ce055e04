"""The reader registry and helpers shared by the dataset readers."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from harken.data.manifest import Manifest
from harken.errors import DataError
from harken.registry import Registry
from harken.textfiles import read_utf8

READERS: Registry[Manifest] = Registry("dataset")
"""Dataset name → reader ``(data_dir=None, **options) -> Manifest``."""

MAX_LISTED = 5


def read_csv_text(path: Path) -> str:
    """The text of a UTF-8 CSV file (a byte-order mark is dropped).

    Raises:
        DataError: the file is missing, a folder, unreadable, or not UTF-8 (the message names
            the line and byte offset of the first undecodable byte).
    """
    return read_utf8(path, "CSV", DataError, "give the CSV file inside it")


def iter_csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(1-based line number, row)`` for each non-blank data row of a CSV with a header.

    Values are stripped of surrounding whitespace; a UTF-8 byte-order mark is ignored; blank rows
    are skipped.

    Raises:
        DataError: the file is missing, empty, not UTF-8, or a row has more or fewer fields than
            the header (the message names the line).
    """
    reader = csv.reader(io.StringIO(read_csv_text(path), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty; expected a header row")
        header = [h.strip() for h in header]
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(values)} fields but the header has "
                    f"{len(header)} ({','.join(header)}); "
                    + (
                        "quote values that contain commas"
                        if len(values) > len(header)
                        else "add the missing fields (they may be empty: a,,c)"
                    )
                )
            yield reader.line_num, {h: v.strip() for h, v in zip(header, values, strict=True)}
    except csv.Error as exc:
        raise DataError(
            f"{path}, line {reader.line_num}: malformed CSV ({exc}); check quoting"
        ) from exc


def read_header(path: Path) -> list[str]:
    """The stripped header of a CSV file (empty list for an empty file).

    Raises:
        DataError: as :func:`read_csv_text`.
    """
    text = read_csv_text(path)
    try:
        return [h.strip() for h in next(csv.reader(io.StringIO(text, newline="")), [])]
    except csv.Error as exc:
        raise DataError(f"{path}, line 1: malformed CSV header ({exc}); check quoting") from exc


def require_columns(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; the header is "
            f"{','.join(header) or '(empty)'} and must contain {','.join(required)}"
        )


def check_missing_files(paths: Sequence[Path], source: str, hint: str) -> None:
    """Raise one DataError listing the first few of ``paths`` that do not exist, and the count."""
    missing = [p for p in dict.fromkeys(paths) if not Path(p).exists()]
    if not missing:
        return
    shown = "\n  ".join(str(p) for p in missing[:MAX_LISTED])
    more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
    raise DataError(
        f"{source}: {len(missing)} of {len(set(paths))} audio file(s) not found:\n  {shown}{more}\n"
        f"{hint}"
    )


def data_root(data_dir: str | Path | None, folder: str, marker: str) -> Path | None:
    """Find a dataset folder holding ``marker``: ``data_dir`` itself, ``data_dir/<folder>``, then
    ``$HARKEN_DATA_DIR/<folder>`` and ``$HARKEN_DATA_DIR``. None when none holds it."""
    candidates: list[Path] = []
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        candidates += [base, base / folder]
    env = os.environ.get("HARKEN_DATA_DIR")
    if env:
        candidates += [Path(env).expanduser() / folder, Path(env).expanduser()]
    for candidate in candidates:
        if (candidate / marker).is_file():
            return candidate
    return None
