"""Reading the text files a user hands harken (labels lists, configs, dataset CSVs): UTF-8 only,
with errors that name the file, the line and the byte, and say what to do."""

from __future__ import annotations

from pathlib import Path

from harken.errors import HarkenError


def read_utf8(path: Path, what: str, error: type[HarkenError], folder_hint: str) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Args:
        path: The file.
        what: What the file is, for messages ("labels file", "config file", "CSV").
        error: The error class to raise (``ConfigError`` for configs, ``DataError`` for data).
        folder_hint: What to do when ``path`` is a folder.

    Raises:
        error: the file is missing, a folder, unreadable, or not UTF-8 (naming the line and
            byte offset of the first undecodable byte).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found; check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; {folder_hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}, line {line}: not UTF-8 text (byte {exc.start}: "
            f"{data[exc.start : exc.end]!r}); save the {what} as UTF-8"
        ) from None
