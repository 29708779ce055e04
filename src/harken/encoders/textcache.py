"""A persistent cache of text embeddings, so no text is embedded twice by the same encoder.

Every text encoder :func:`~harken.encoders.base.get_encoder` returns is wrapped in a
:class:`CachedTextEncoder`: label names, prompt templates, descriptions, the bridge's 521
AudioSet label names and search queries are looked up here first, and the real model is loaded
only for texts it has never embedded. A fully warm call imports neither sentence-transformers
nor transformers.

**Key.** One row per ``(sha256 of the encoder's config(), exact text)``: the config names the
model, its version and pooling, so another model, checkpoint or setting never shares rows. The
text is used as given (no stripping or case folding). ``config()`` and ``dim`` are the wrapped
encoder's own, unchanged (they are part of the feature-store and run-manifest keys).

**Store.** One SQLite database, ``$HARKEN_CACHE_DIR/text-embeddings.sqlite3`` (default
``~/.cache/harken``), in WAL mode with a busy timeout, so several processes read and write it at
once; each batch of new rows is one transaction (all or nothing). Values are raw little-endian
float32 bytes with their dimension and a CRC-32 of text and bytes: no pickle. A damaged
database (not a database, malformed pages) is moved aside to ``*.corrupt-<time>`` with a warning
and rebuilt; a row whose size or checksum is wrong is recomputed; a store that cannot be opened
or written at all (read-only folder, disk full, locked too long) is skipped with a warning — the
cache never fails a run, it only makes it slower.

**Determinism.** Rows must not depend on which other texts were embedded in the same call (else
a result would depend on what happened to be cached before). sentence-transformers pads a batch
to its longest text, and padding changes float results slightly (≈1e-7 for all-MiniLM-L6-v2:
105 of YAMNet's 521 label names embed bit-identically alone and in one batch), so harken's
sentence-transformers encoders embed texts grouped by token count (no padding at all), which
gives every text exactly its embedding alone (:class:`~harken.encoders.sbert.SbertEncoder`).
Encoders that declare this (``batch_invariant = True``) get their misses in one call; any other
text encoder gets them one text per call, the one composition-free order.

**Opting out.** ``HARKEN_TEXT_CACHE=0`` (or ``off``/``false``/``no``) turns the cache off;
:func:`clear_text_cache` (or deleting the file) empties it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: File name of the store inside the harken cache directory.
CACHE_FILE = "text-embeddings.sqlite3"
#: Schema version kept in ``PRAGMA user_version``; another version is rebuilt.
SCHEMA_VERSION = 1
#: Seconds a writer waits for another process's transaction before giving up (with a warning).
BUSY_TIMEOUT_S = 60.0
#: Texts per ``SELECT ... IN (...)`` (below SQLite's bound-parameter limit).
QUERY_CHUNK = 500

_OFF = {"0", "off", "false", "no"}
_SCHEMA = (
    "CREATE TABLE embeddings (config TEXT NOT NULL, text TEXT NOT NULL, dim INTEGER NOT NULL, "
    "vec BLOB NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (config, text)) WITHOUT ROWID",
    "CREATE TABLE encoders (config TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "config_json TEXT NOT NULL)",
)


def _schema_version(con: sqlite3.Connection) -> int:
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def text_cache_enabled() -> bool:
    """False when ``HARKEN_TEXT_CACHE`` is ``0``, ``off``, ``false`` or ``no``."""
    return os.environ.get("HARKEN_TEXT_CACHE", "1").strip().lower() not in _OFF


def default_cache_path() -> Path:
    """``$HARKEN_CACHE_DIR/text-embeddings.sqlite3`` (default ``~/.cache/harken/...``)."""
    root = os.environ.get("HARKEN_CACHE_DIR") or Path.home() / ".cache" / "harken"
    return Path(root).expanduser() / CACHE_FILE


def clear_text_cache(path: str | Path | None = None) -> list[Path]:
    """Delete the text-embedding store (and its WAL files); returns the files removed."""
    path = Path(path) if path is not None else default_cache_path()
    removed = []
    for file in _store_files(path):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
            removed.append(file)
    return removed


def config_key(config: dict) -> str:
    """sha256 hex digest of an encoder config (sorted-key JSON)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _crc(text: str, vec: bytes) -> int:
    return zlib.crc32(vec, zlib.crc32(text.encode("utf-8")))


def _store_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means the file is damaged (not busy, read-only or full)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    return type(exc) is sqlite3.DatabaseError


class TextEmbeddingCache:
    """Text embeddings by ``(encoder config, text)`` in one SQLite file.

    Every operation opens its own short connection, so instances are cheap and safe to use from
    several processes. Failures never raise: they warn and behave as an empty cache.

    Args:
        path: The database file; default :func:`default_cache_path`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._ready = False

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            if not self._ready:
                self._prepare(con)
            yield con
        finally:
            con.close()

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Create the schema in a new file; refuse (as damage) a file with another schema."""
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if _schema_version(con) != SCHEMA_VERSION:
            con.execute("BEGIN IMMEDIATE")  # re-checked under the lock: another process may win
            try:
                version, tables = _schema_version(con), _tables(con)
                if version == 0 and not tables:
                    for statement in _SCHEMA:
                        con.execute(statement)
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(
                        f"not a harken text cache (schema {version}, tables {sorted(tables)})"
                    )
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            con.execute("PRAGMA journal_mode = WAL")  # kept by the file from now on
        self._ready = True

    def _recover(self, exc: sqlite3.DatabaseError) -> None:
        """Move a damaged store aside (the next operation starts a new one)."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
        moved = False
        for file in _store_files(self.path):
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                os.replace(file, aside.with_name(aside.name + file.name[len(self.path.name) :]))
                moved = True
        self._ready = False
        warnings.warn(
            f"text-embedding cache {self.path} is damaged ({exc}); "
            + (f"moved aside to {aside} and " if moved else "")
            + "starting a new one (texts are embedded again)",
            stacklevel=4,
        )

    def _run(self, what: str, operation, default):
        """Run ``operation(con)``; on damage recover and retry once; on other errors warn."""
        for attempt in (1, 2):
            try:
                with self._connect() as con:
                    return operation(con)
            except sqlite3.DatabaseError as exc:
                if _is_damage(exc) and attempt == 1:
                    self._recover(exc)
                    continue
                warnings.warn(
                    f"text-embedding cache {self.path}: cannot {what} ({exc}); "
                    "continuing without it (set HARKEN_TEXT_CACHE=0 to silence this)",
                    stacklevel=4,
                )
                return default
            except OSError as exc:
                warnings.warn(
                    f"text-embedding cache {self.path}: cannot {what} ({exc}); continuing "
                    "without it (check the folder's permissions and free space, or set "
                    "HARKEN_TEXT_CACHE=0)",
                    stacklevel=4,
                )
                return default
        return default

    def get_many(self, key: str, texts: Sequence[str], dim: int | None = None) -> dict:
        """The cached rows of ``texts`` under config ``key``: ``{text: float32 [dim]}``.

        Rows whose size or checksum is wrong (or whose dimension is not ``dim``) are left out,
        so they are recomputed and replaced.
        """
        distinct = list(dict.fromkeys(texts))

        def select(con: sqlite3.Connection) -> dict:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(distinct), QUERY_CHUNK):
                part = distinct[start : start + QUERY_CHUNK]
                marks = ",".join("?" * len(part))
                rows = con.execute(
                    f"SELECT text, dim, vec, crc FROM embeddings WHERE config = ? "
                    f"AND text IN ({marks})",
                    (key, *part),
                )
                for text, n, vec, crc in rows:
                    if _valid(text, n, vec, crc, dim):
                        found[text] = np.frombuffer(vec, dtype="<f4").astype(np.float32)
            return found

        return self._run("read it", select, {}) if distinct else {}

    def put_many(self, key: str, name: str, config: dict, rows: dict[str, np.ndarray]) -> None:
        """Store ``{text: float32 [dim]}`` under config ``key`` in one transaction."""
        if not rows:
            return
        records = []
        for text, row in rows.items():
            vec = np.ascontiguousarray(row, dtype="<f4").tobytes()
            records.append((key, text, int(np.size(row)), vec, _crc(text, vec)))
        config_json = json.dumps(config, sort_keys=True, default=str)

        def insert(con: sqlite3.Connection) -> None:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(
                    "INSERT OR IGNORE INTO encoders VALUES (?, ?, ?)", (key, name, config_json)
                )
                con.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", records)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

        self._run("write to it", insert, None)

    def __len__(self) -> int:
        """Rows stored (all encoders)."""
        return self._run(
            "read it", lambda con: con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0], 0
        )


def _valid(text: str, n: Any, vec: Any, crc: Any, dim: int | None) -> bool:
    return (
        isinstance(vec, bytes)
        and isinstance(n, int)
        and n > 0
        and len(vec) == 4 * n
        and (dim is None or n == dim)
        and crc == _crc(text, vec)
    )


class CachedTextEncoder:
    """A text encoder whose embeddings come from :class:`TextEmbeddingCache` when known.

    ``name``, ``modality``, ``dim``, ``sample_rate`` and ``config()`` are the wrapped encoder's;
    any other attribute is looked up on it. ``embed`` answers each text from (in order) this
    object's memory, the persistent store, or the wrapped encoder — which therefore loads its
    model only when some text was never embedded.

    Args:
        encoder: A text encoder.
        cache: The store (default: :class:`TextEmbeddingCache` at its default path).

    Attributes:
        hits: Texts answered without the model so far.
        misses: Distinct texts the model embedded so far.
    """

    def __init__(self, encoder, cache: TextEmbeddingCache | None = None) -> None:
        self.encoder = encoder
        self.cache = cache if cache is not None else TextEmbeddingCache()
        self.hits = 0
        self.misses = 0
        self._key: str | None = None
        self._config: dict | None = None
        self._memory: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def modality(self) -> str:
        return self.encoder.modality

    @property
    def sample_rate(self) -> None:
        return self.encoder.sample_rate

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def config(self) -> dict:
        return self.encoder.config()

    def __getattr__(self, item: str):
        if item == "encoder":  # not yet set (during unpickling): no recursion
            raise AttributeError(item)
        return getattr(self.encoder, item)

    def __repr__(self) -> str:
        return f"CachedTextEncoder({self.encoder!r})"

    def _cache_key(self) -> str:
        if self._key is None:
            self._config = self.encoder.config()
            self._key = config_key(self._config)
        return self._key

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Embed texts, from the cache where possible.

        Args:
            batch: Strings.

        Returns:
            float32 ``[N, dim]``, bit-identical to the wrapped encoder's rows for each text
            embedded alone.
        """
        texts = [str(t) for t in batch]
        if not texts:
            return self.encoder.embed([])
        key = self._cache_key()
        todo = [t for t in dict.fromkeys(texts) if t not in self._memory]
        if todo:
            self._memory.update(self.cache.get_many(key, todo, self._known_dim()))
        missing = [t for t in todo if t not in self._memory]
        if missing:
            new = self._embed_missing(missing)
            self.cache.put_many(key, self.name, self._config, new)
            self._memory.update(new)
            self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        return np.stack([self._memory[t] for t in texts]).astype(np.float32, copy=False)

    def _known_dim(self) -> int | None:
        """The dimension when known without loading the model, else None."""
        known = getattr(self.encoder, "_dim", None)
        return known if isinstance(known, int) else None

    def _embed_missing(self, texts: list[str]) -> dict[str, np.ndarray]:
        if getattr(self.encoder, "batch_invariant", False):
            parts = [np.asarray(self.encoder.embed(texts), np.float32)]
        else:  # one text per call: a row never depends on what else was missing
            parts = [np.asarray(self.encoder.embed([t]), np.float32) for t in texts]
        rows = np.concatenate(parts)
        if rows.ndim != 2 or rows.shape[0] != len(texts):
            from harken.errors import DataError

            raise DataError(
                f"text encoder {self.name!r} returned shape {rows.shape} for {len(texts)} texts; "
                f"expected [{len(texts)}, D]"
            )
        return {t: rows[i].copy() for i, t in enumerate(texts)}


def cached(encoder, path: str | Path | None = None):
    """``encoder`` wrapped in :class:`CachedTextEncoder` if it embeds text and the cache is on
    (``HARKEN_TEXT_CACHE``); anything else is returned unchanged."""
    if getattr(encoder, "modality", None) != "text" or not text_cache_enabled():
        return encoder
    if isinstance(encoder, CachedTextEncoder):
        return encoder
    return CachedTextEncoder(encoder, TextEmbeddingCache(path))
