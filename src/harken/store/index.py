"""A persistent embedding index: a collection's embeddings, one file per row, searched by score.

The score of a query ``q`` and row ``x`` is the inner product ``q·x`` (pass L2-normalised vectors
for cosine similarity). Two backends:

* ``exact``: a numpy matrix product over chunks of queries (at most ~64 MiB of scores at a time,
  so 1,024 queries against 100k rows stay bounded), top-k by ``argpartition`` then a sort. Equal
  scores are ordered by row index, at the cut-off too, so results are fully deterministic.
* ``faiss``: an approximate HNSW graph (``faiss.IndexHNSWFlat``, ``METRIC_INNER_PRODUCT``,
  ``M = 32``, ``efConstruction = 80``, ``efSearch = 128`` by default) from the optional
  ``faiss-cpu`` package (``pip install harken[faiss]``). Results are approximate and ties come in
  FAISS's order. A graph built with one thread is reproducible; with several it may differ
  slightly between builds, so the saved ``faiss.index`` is what makes a loaded index repeat.

HNSW rather than IVF-flat, measured with ``benchmarks/index.py --ivf`` (100k × 512 unit vectors
near a 32-d subspace, one thread): HNSW reached recall@10 0.992 against ``exact`` at 1.9 ms per
query (2.3 ms one at a time, against 36 ms for exact search), while IVF-flat (``nlist = 4√N``)
reached only 0.90 probing 10 % of its lists at 4.4 ms, after a k-means training as long as the
HNSW build (~150 s). On uniformly random 512-d vectors, which have no neighbourhood structure,
both fail (HNSW recall@10 0.23): approximate search suits real embeddings, not noise.

``backend="auto"`` uses ``exact`` below ``faiss_threshold`` rows (at 50k × 512, exact search
costs 1.3 ms per query in batches of 100 and 13 ms for a single query on one core) and
``faiss`` from there on when FAISS can be imported; otherwise ``exact``, recording why in
:attr:`EmbeddingIndex.backend_note`. Building the HNSW graph takes minutes at 100k rows on one
core; exact needs no build at all.

On disk an index is one folder::

    <folder>/
        index.json        format version, backend, dim, count, sha256 hashes, the caller's meta
        embeddings.npy    float32 [count, dim]
        files.json        one path per row
        faiss.index       the HNSW graph (faiss backend only; rebuilt from the embeddings if lost)

:meth:`EmbeddingIndex.save` writes all of it into a temporary sibling folder and renames that
into place, so an interrupted save leaves the old index (or none), never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harken.errors import ConfigError, DataError

FORMAT = "harken-embedding-index"
FORMAT_VERSION = 1
#: The files of an index folder (nothing else is ever deleted when an index is replaced).
INDEX_FILES = frozenset({"index.json", "embeddings.npy", "files.json", "faiss.index"})
BACKENDS = ("auto", "exact", "faiss")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
DEFAULT_EF_SEARCH = 128
DEFAULT_FAISS_THRESHOLD = 50_000
_CHUNK_BYTES = 64 * 2**20  # scores held at once by exact search
_REBUILD_HINT = "rebuild it with `harken index`"


def faiss_module():
    """The ``faiss`` module, or ``None`` when it is not installed (it is an optional extra)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _sha256(data: bytes | np.ndarray) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def _files_blob(files: Sequence[str]) -> bytes:
    return (json.dumps(list(files), ensure_ascii=False, indent=0) + "\n").encode("utf-8")


def _check_embeddings(embeddings) -> np.ndarray:
    try:
        emb = np.array(embeddings, dtype=np.float32, order="C", copy=True)  # the index's own
    except (TypeError, ValueError) as exc:
        raise DataError(f"embeddings must be a numeric [N, D] array ({exc})") from exc
    if emb.ndim != 2:
        raise DataError(f"embeddings must be a 2-D [N, D] array, got shape {emb.shape}")
    if emb.shape[0] == 0:
        raise DataError("the collection is empty: an index needs at least one embedding")
    if emb.shape[1] == 0:
        raise DataError(f"embeddings have dimension 0 (shape {emb.shape})")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"embedding row {int(rows[0])} contains NaN or inf ({rows.size} bad rows in all); "
            "re-encode those files or drop them"
        )
    return emb


def _check_files(files: Sequence, count: int) -> tuple[str, ...]:
    if isinstance(files, str | os.PathLike):
        raise DataError("files must be a sequence of paths, one per embedding row, not one path")
    out = []
    for i, f in enumerate(files):
        if not isinstance(f, str | os.PathLike):
            raise DataError(f"files[{i}] is {type(f).__name__}, expected a path string")
        out.append(os.fspath(f))
    if len(out) != count:
        raise DataError(f"{len(out)} files for {count} embedding rows: give one file per row")
    return tuple(out)


def _check_meta(meta: dict | None) -> dict:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ConfigError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"meta must be JSON-serialisable ({exc})") from exc


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of each row of ``scores``, best first, equal scores by column index."""
    n = scores.shape[1]
    if k < n:
        idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(scores, idx, axis=1)
        cut = vals.min(axis=1)
        # argpartition picks arbitrary members of a tie at the cut-off: keep the lowest indices.
        tied = (scores == cut[:, None]).sum(axis=1) > (vals == cut[:, None]).sum(axis=1)
        for r in np.flatnonzero(tied):
            above = np.flatnonzero(scores[r] > cut[r])
            at = np.flatnonzero(scores[r] == cut[r])[: k - above.size]
            idx[r] = np.concatenate([above, at])
        vals = np.take_along_axis(scores, idx, axis=1)
    else:
        idx = np.broadcast_to(np.arange(n), scores.shape)
        vals = scores
    order = np.lexsort((idx, -vals), axis=-1)
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(idx, order, axis=1)


def exact_search(
    embeddings: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries [Q, D]`` over ``embeddings [N, D]``, in chunks.

    Returns:
        ``(scores float32 [Q, k], indices int64 [Q, k])``, best first, ties by row index.
    """
    n = embeddings.shape[0]
    rows = max(1, _CHUNK_BYTES // (4 * n))
    scores = np.empty((len(queries), k), dtype=np.float32)
    indices = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), rows):
        block = queries[lo : lo + rows] @ embeddings.T
        scores[lo : lo + rows], indices[lo : lo + rows] = _top_k_rows(block, k)
    return scores, indices


def _build_hnsw(embeddings: np.ndarray):
    faiss = faiss_module()
    index = faiss.IndexHNSWFlat(embeddings.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(embeddings)
    return index


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EmbeddingIndex:
    """Embeddings ``[N, D]`` of a collection, one file per row, and the caller's ``meta``.

    Create one with :meth:`build` or :meth:`load`; search it with :meth:`search` (arrays) or
    :meth:`search_files` (``{"file", "score"}`` dicts). ``meta`` (encoder config, how to embed
    queries, ...) is stored and returned untouched.

    Attributes:
        embeddings: float32 ``[N, D]``, read-only.
        files: one path string per row.
        meta: the caller's JSON-serialisable dict.
        backend: ``"exact"`` or ``"faiss"`` (the one in use).
        requested_backend: what :meth:`build` was asked for (``"auto"``, ``"exact"``, ``"faiss"``).
        backend_note: why ``backend`` differs from what was asked or expected, else ``None``.
        ef_search: HNSW ``efSearch`` of the faiss backend (candidates kept while searching).
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        files: tuple[str, ...],
        meta: dict,
        backend: Literal["exact", "faiss"],
        *,
        requested_backend: str = "exact",
        backend_note: str | None = None,
        ef_search: int = DEFAULT_EF_SEARCH,
        faiss_index: Any = None,
    ) -> None:
        self.embeddings = embeddings
        self.embeddings.flags.writeable = False
        self.files = files
        self.meta = meta
        self.backend = backend
        self.requested_backend = requested_backend
        self.backend_note = backend_note
        self.ef_search = ef_search
        self._faiss_index = faiss_index

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        embeddings,
        files: Sequence[str | os.PathLike],
        meta: dict | None = None,
        backend: Literal["auto", "exact", "faiss"] = "auto",
        faiss_threshold: int = DEFAULT_FAISS_THRESHOLD,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> EmbeddingIndex:
        """Index ``embeddings [N, D]`` (rows scored by inner product) of ``files`` (one per row).

        Args:
            embeddings: float ``[N, D]``, finite, ``N ≥ 1`` (stored as float32).
            files: one path per row (absolute paths, so results can be opened from anywhere).
            meta: JSON-serialisable dict kept with the index (e.g. the encoder's config).
            backend: ``"exact"``, ``"faiss"`` (requires ``faiss-cpu``), or ``"auto"``: exact
                below ``faiss_threshold`` rows, FAISS at or above it when importable.
            faiss_threshold: Row count from which ``auto`` picks FAISS.
            ef_search: HNSW ``efSearch`` (higher: better recall, slower queries).

        Raises:
            DataError: empty, non-2-D or non-finite embeddings; a files count that is not ``N``.
            ConfigError: an unknown backend, ``faiss`` without FAISS installed, a bad ``meta``.
        """
        if backend not in BACKENDS:
            raise ConfigError(f"unknown index backend {backend!r}; choose from {BACKENDS}")
        _positive_int("ef_search", ef_search)
        emb = _check_embeddings(embeddings)
        files_t = _check_files(files, len(emb))
        meta_d = _check_meta(meta)
        have_faiss = faiss_module() is not None
        note = None
        if backend == "faiss" and not have_faiss:
            raise ConfigError(
                "backend 'faiss' needs the faiss-cpu package: `pip install harken[faiss]` "
                "(or use backend 'exact')"
            )
        if backend == "auto":
            use = "faiss" if len(emb) >= faiss_threshold and have_faiss else "exact"
            if len(emb) >= faiss_threshold and not have_faiss:
                note = (
                    f"{len(emb)} rows ≥ faiss_threshold {faiss_threshold} but faiss is not "
                    "installed: exact search (`pip install harken[faiss]` for HNSW)"
                )
        else:
            use = backend
        faiss_index = _build_hnsw(emb) if use == "faiss" else None
        return cls(
            emb,
            files_t,
            meta_d,
            use,
            requested_backend=backend,
            backend_note=note,
            ef_search=int(ef_search),
            faiss_index=faiss_index,
        )

    # --- properties --------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def count(self) -> int:
        return int(self.embeddings.shape[0])

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"EmbeddingIndex(count={self.count}, dim={self.dim}, backend={self.backend!r})"

    # --- search ------------------------------------------------------------------------------

    def _check_queries(self, queries) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2:
            raise DataError(f"queries must be [Q, D] or [D], got shape {q.shape}")
        if q.shape[1] != self.dim:
            raise DataError(
                f"queries have dimension {q.shape[1]} but the index has dimension {self.dim}: "
                "embed them with the encoder recorded in the index's meta"
            )
        bad = ~np.isfinite(q).all(axis=1)
        if bad.any():
            raise DataError(f"query {int(np.flatnonzero(bad)[0])} contains NaN or inf")
        return np.ascontiguousarray(q)

    def search(self, queries, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``top_k`` best rows for each query, best first.

        Args:
            queries: float ``[Q, D]`` (or one query ``[D]``), in the space of the embeddings.
            top_k: Rows per query; more than ``count`` gives ``count``.

        Returns:
            ``(scores float32 [Q, k], indices int64 [Q, k])`` with ``k = min(top_k, count)``.
        """
        q = self._check_queries(queries)
        k = min(_positive_int("top_k", top_k), self.count)
        if self.backend == "exact":
            return exact_search(self.embeddings, q, k)
        faiss = faiss_module()
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, indices = self._faiss_index.search(q, k, params=params)
        short = np.flatnonzero((indices < 0).any(axis=1))
        if short.size:  # HNSW found fewer than k rows: answer those queries exactly
            scores[short], indices[short] = exact_search(self.embeddings, q[short], k)
        return scores.astype(np.float32), indices.astype(np.int64)

    def search_files(self, queries, top_k: int = 10) -> list[list[dict[str, Any]]]:
        """:meth:`search` as ``[[{"file": path, "score": float}, ...] per query]``, best first."""
        scores, indices = self.search(queries, top_k)
        return [
            [{"file": self.files[i], "score": float(s)} for s, i in zip(row_s, row_i, strict=True)]
            for row_s, row_i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    # --- persistence -------------------------------------------------------------------------

    def _header(self, faiss_blob: bytes | None) -> dict:
        try:
            version = metadata.version("harken")
        except metadata.PackageNotFoundError:
            version = None
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "harken_version": version,
            "backend": self.backend,
            "requested_backend": self.requested_backend,
            "backend_note": self.backend_note,
            "faiss": None
            if self.backend != "faiss"
            else {
                "type": "IndexHNSWFlat",
                "metric": "inner_product",
                "M": HNSW_M,
                "ef_construction": HNSW_EF_CONSTRUCTION,
                "ef_search": self.ef_search,
            },
            "dim": self.dim,
            "count": self.count,
            "dtype": "float32",
            "embeddings_sha256": _sha256(self.embeddings),
            "files_sha256": _sha256(_files_blob(self.files)),
            "faiss_sha256": None if faiss_blob is None else _sha256(faiss_blob),
            "meta": self.meta,
        }

    def _write(self, folder: Path) -> None:
        faiss_blob = None
        if self.backend == "faiss":
            faiss_blob = faiss_module().serialize_index(self._faiss_index).tobytes()
            _write_bytes(folder / "faiss.index", faiss_blob)
        with open(folder / "embeddings.npy", "wb") as f:
            np.save(f, self.embeddings, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        _write_bytes(folder / "files.json", _files_blob(self.files))
        header = json.dumps(self._header(faiss_blob), indent=2, ensure_ascii=False) + "\n"
        _write_bytes(folder / "index.json", header.encode("utf-8"))
        _fsync_dir(folder)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index to ``folder`` atomically, replacing an index already there.

        Everything is written to a temporary sibling folder that is then renamed to ``folder``
        (an existing index is first renamed aside and removed afterwards): an interrupted save
        leaves the old index or, at worst, none — never a mixture of old and new files.

        Raises:
            ConfigError: ``folder`` exists and is not a harken index, or holds files an index does
                not (it is never overwritten).
        """
        folder = Path(folder)
        self.check_target(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        try:
            self._write(tmp)
            old = None
            if folder.exists():
                old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
                os.rename(folder, old)
            try:
                os.rename(tmp, folder)
            except BaseException:
                if old is not None:
                    os.rename(old, folder)
                raise
            _fsync_dir(folder.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    @staticmethod
    def check_target(folder: str | os.PathLike) -> None:
        """Refuse to replace ``folder`` unless it is missing, empty, or an index harken wrote.

        An index harken wrote holds an ``index.json`` whose ``format`` is harken's and no files
        other than the index's own (``index.json``, ``embeddings.npy``, ``files.json``,
        ``faiss.index``); anything else is never deleted.

        Raises:
            ConfigError: naming the folder and what in it is not harken's (a usage error:
                choose another ``--out``).
        """
        folder = Path(folder)
        if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
            return
        hint = "choose another folder or remove it yourself"
        if not folder.is_dir() or not _has_harken_header(folder / "index.json"):
            raise ConfigError(f"{folder} exists and is not a harken index; {hint}")
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in INDEX_FILES)
        if foreign:
            raise ConfigError(
                f"{folder} holds files a harken index does not ({', '.join(foreign[:5])}); "
                f"it is not replaced: {hint}"
            )

    @classmethod
    def load(
        cls, folder: str | os.PathLike, ef_search: int | None = None, verify: bool = True
    ) -> EmbeddingIndex:
        """Read an index written by :meth:`save`.

        Args:
            folder: The index folder.
            ef_search: Override the saved HNSW ``efSearch``.
            verify: Check the sha256 of the embeddings and files (reads them twice; cheap next
                to loading).

        A missing or corrupt ``faiss.index`` is rebuilt from the embeddings (with a warning);
        without FAISS installed, a faiss index falls back to exact search (with a warning).

        Raises:
            DataError: naming the folder and file, when the folder is not a harken index, was
                written by a newer format, or its files are missing, corrupt or inconsistent.
        """
        folder = Path(folder)
        header = _read_header(folder)
        emb = _read_embeddings(folder, header, verify)
        files = _read_files(folder, header, verify)
        backend = header["backend"]
        note = header.get("backend_note")
        saved_ef = (header.get("faiss") or {}).get("ef_search", DEFAULT_EF_SEARCH)
        ef = _positive_int("ef_search", saved_ef if ef_search is None else ef_search)
        faiss_index = None
        if backend == "faiss":
            faiss_index, backend, note = _read_faiss(folder, header, emb, note)
        return cls(
            emb,
            files,
            header.get("meta") or {},
            backend,
            requested_backend=header.get("requested_backend", backend),
            backend_note=note,
            ef_search=ef,
            faiss_index=faiss_index,
        )


# --- loading helpers ---------------------------------------------------------------------------


def _has_harken_header(path: Path) -> bool:
    """Whether ``path`` is an ``index.json`` harken wrote (its format key is harken's)."""
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and header.get("format") == FORMAT


def _read_header(folder: Path) -> dict:
    if not folder.is_dir():
        raise DataError(f"{folder}: no index folder here — build one with `harken index`")
    path = folder / "index.json"
    if not path.is_file():
        raise DataError(
            f"{folder} is not a harken index: index.json missing — build one with `harken index`"
        )
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); {_REBUILD_HINT}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataError(f"{path} is not a harken index header; {_REBUILD_HINT}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise DataError(
            f"{folder}: index format version {version!r}, this harken reads version "
            f"{FORMAT_VERSION}; " + ("upgrade harken or rebuild it" if newer else _REBUILD_HINT)
        )
    missing = [
        key
        for key in ("backend", "dim", "count", "embeddings_sha256", "files_sha256")
        if key not in header
    ]
    if missing or header["backend"] not in ("exact", "faiss"):
        raise DataError(f"{path} lacks {missing or 'a valid backend'}; {_REBUILD_HINT}")
    return header


def _read_embeddings(folder: Path, header: dict, verify: bool) -> np.ndarray:
    path = folder / "embeddings.npy"
    if not path.is_file():
        raise DataError(f"{folder}: embeddings.npy missing; {_REBUILD_HINT}")
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); {_REBUILD_HINT}") from exc
    expected = (header["count"], header["dim"])
    if emb.dtype != np.float32 or emb.shape != expected:
        raise DataError(
            f"{path} holds {emb.dtype} {emb.shape}, index.json says float32 {expected}; "
            f"{_REBUILD_HINT}"
        )
    if verify and _sha256(emb) != header["embeddings_sha256"]:
        raise DataError(
            f"{path} does not match its sha256 in index.json (changed or corrupt); {_REBUILD_HINT}"
        )
    return np.ascontiguousarray(emb)


def _read_files(folder: Path, header: dict, verify: bool) -> tuple[str, ...]:
    path = folder / "files.json"
    if not path.is_file():
        raise DataError(f"{folder}: files.json missing; {_REBUILD_HINT}")
    blob = path.read_bytes()
    if verify and _sha256(blob) != header["files_sha256"]:
        raise DataError(
            f"{path} does not match its sha256 in index.json (changed or corrupt); {_REBUILD_HINT}"
        )
    try:
        files = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); {_REBUILD_HINT}") from exc
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DataError(f"{path} must hold a JSON list of path strings; {_REBUILD_HINT}")
    if len(files) != header["count"]:
        raise DataError(
            f"{path} lists {len(files)} files for {header['count']} rows; {_REBUILD_HINT}"
        )
    return tuple(files)


def _read_faiss(folder: Path, header: dict, emb: np.ndarray, note: str | None):
    """``(faiss index or None, backend, note)``: load, rebuild, or fall back to exact."""
    faiss = faiss_module()
    if faiss is None:
        note = f"{folder} was built with faiss, which is not installed: exact search instead"
        warnings.warn(note + " (`pip install harken[faiss]`)", RuntimeWarning, stacklevel=3)
        return None, "exact", note
    path = folder / "faiss.index"
    problem = None
    if not path.is_file():
        problem = "faiss.index is missing"
    else:
        blob = path.read_bytes()
        if _sha256(blob) != header.get("faiss_sha256"):
            problem = "faiss.index does not match its sha256 in index.json"
        else:
            try:
                index = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
            except RuntimeError as exc:
                problem = f"faiss.index is unreadable ({exc})"
            else:
                if index.ntotal == len(emb) and index.d == emb.shape[1]:
                    return index, "faiss", note
                problem = f"faiss.index holds {index.ntotal} × {index.d}, not {emb.shape}"
    warnings.warn(
        f"{folder}: {problem}; rebuilding the HNSW graph from embeddings.npy "
        "(save the index again to keep it)",
        RuntimeWarning,
        stacklevel=3,
    )
    return _build_hnsw(emb), "faiss", note
