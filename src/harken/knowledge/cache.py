"""A persistent cache of generated descriptions, so nothing is generated twice.

Each entry is keyed by the sha256 of the generator's :meth:`config` (generator name, model id,
prompt template, decoding parameters) and the input text. Entries live in one JSON-lines file
under the harken cache directory (``$HARKEN_CACHE_DIR``, default ``~/.cache/harken``). Writes are
append-only: each batch of entries is written with a single ``write`` on a file opened with
``O_APPEND`` under an exclusive ``flock``, so concurrent writers never interleave lines; a line cut
short by a crash is skipped (with a warning) when the file is read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from harken.errors import DataError
from harken.knowledge.base import DescriptionGenerator, check_items

DEFAULT_CACHE_FILE = "descriptions.jsonl"


def cache_dir() -> Path:
    """harken's cache directory: ``$HARKEN_CACHE_DIR`` or ``~/.cache/harken`` (created)."""
    root = os.environ.get("HARKEN_CACHE_DIR") or Path.home() / ".cache" / "harken"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def description_key(config: dict, item: str) -> str:
    """sha256 hex digest of a generator config and one input text."""
    blob = json.dumps({"config": config, "item": item}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class DescriptionCache:
    """Descriptions by key, persisted in a JSON-lines file.

    Args:
        path: The ``.jsonl`` file; default ``<cache_dir()>/descriptions.jsonl``.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / DEFAULT_CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, list[str]] = {}
        self._offset = 0
        self._refresh()

    def _refresh(self) -> None:
        """Read entries appended (by this or another process) since the last read."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # an unterminated tail may still be being written
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self._entries[record["key"]] = list(record["descriptions"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                warnings.warn(
                    f"{self.path}: skipping a malformed cache line ({e}); it will be regenerated",
                    stacklevel=3,
                )
        self._offset += end

    def get(self, key: str) -> list[str] | None:
        """The cached descriptions for ``key``, or None."""
        if key not in self._entries:
            self._refresh()
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        self._refresh()
        return len(self._entries)

    def put_many(self, records: Sequence[tuple[str, str, str, list[str]]]) -> None:
        """Append entries ``(key, generator name, input text, descriptions)`` in one write."""
        if not records:
            return
        lines = [
            json.dumps(
                {"key": key, "generator": name, "item": item, "descriptions": list(descs)},
                ensure_ascii=False,
            )
            for key, name, item, descs in records
        ]
        blob = ("\n".join(lines) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                # Terminate a line a crashed writer left unfinished so ours starts clean.
                size = os.fstat(fd).st_size
                if size and _last_byte(self.path, size) != b"\n":
                    blob = b"\n" + blob
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        for key, _, _, descs in records:
            self._entries[key] = list(descs)


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


class CachedGenerator:
    """Wraps a generator so each (config, input text) is generated once, ever.

    ``describe`` looks every item up in the cache, sends the distinct misses to the wrapped
    generator in one call, stores the results, and answers in input order.

    Args:
        generator: Any :class:`~harken.knowledge.base.DescriptionGenerator`.
        cache: A :class:`DescriptionCache`, a path to its ``.jsonl`` file, or None for the default.

    Attributes:
        hits: Items answered from the cache so far.
        misses: Distinct items sent to the wrapped generator so far.
    """

    def __init__(
        self, generator: DescriptionGenerator, cache: DescriptionCache | str | Path | None = None
    ) -> None:
        self.generator = generator
        self.cache = cache if isinstance(cache, DescriptionCache) else DescriptionCache(cache)
        self.name = generator.name
        self.hits = 0
        self.misses = 0
        self._config = generator.config()

    def config(self) -> dict:
        return self.generator.config()

    def describe(self, items: Sequence[str]) -> list[list[str]]:
        items = check_items(items)
        keys = [description_key(self._config, item) for item in items]
        todo: dict[str, str] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in todo and self.cache.get(key) is None:
                todo[key] = item
        self.hits += len(items) - sum(1 for k in keys if k in todo)
        if todo:
            new = self.generator.describe(list(todo.values()))
            if len(new) != len(todo):
                raise DataError(
                    f"generator {self.name!r} returned {len(new)} results for {len(todo)} items"
                )
            self.cache.put_many(
                [
                    (key, self.name, item, descs)
                    for (key, item), descs in zip(todo.items(), new, strict=True)
                ]
            )
            self.misses += len(todo)
        return [list(self.cache.get(key)) for key in keys]
