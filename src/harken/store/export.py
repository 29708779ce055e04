"""Export embeddings for use elsewhere: Parquet, or ``.npy`` + a JSON manifest.

Two sources, each what a user has in hand:

* **an index folder** (``harken index``): its rows as stored — the joint-space vectors ``a(x)``,
  the file (or WebDataset member) of each row, its clip id, span and labels when the index
  recorded them;
* **a dataset and an encoder** (``kitchen20``, a CSV, WebDataset shards; ``yamnet``, ...): the
  encoder's embeddings of every usable clip, from the feature store (clips not stored yet are
  encoded and stored first). A store folder alone is not a source: it is keyed by content
  hashes and knows neither clip ids, paths nor labels.

Formats:

* ``parquet`` — one row per clip: ``clip_id`` (string), ``path`` (string), ``start``/``end``
  (float64 seconds, null for whole files), ``labels`` (map<string, string>) and ``embedding``
  (fixed_size_list<float32>[D]); the manifest below is stored as JSON under the schema metadata
  key ``harken``. Written in row groups of :data:`ROW_GROUP` rows.
* ``npy`` — ``<out>.npy`` float32 ``[N, D]`` and ``<stem>.json``, the manifest: ``format``,
  ``harken_version``, ``pipeline`` (preprocessing version, encoder or joint-space config),
  ``source``, ``rows``, ``dim``, ``row_order`` and ``clips`` (``clip_id``, ``path``,
  ``start``, ``end``, ``labels`` of each row, in row order) and ``skipped``.

Rows keep the source's order (the index's rows; the dataset's clips minus unusable ones). Both
formats are written to a temporary file beside the output and renamed into place, and rows are
streamed in blocks (the embeddings are read from a memory map), so memory stays flat in the
number of rows. An existing output is replaced only when harken's export wrote it (a Parquet
file carrying the ``harken`` metadata key; a ``.npy`` whose manifest beside it is an export
manifest); anything else is refused before any work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harken.data.manifest import Clip
from harken.errors import ConfigError, DataError
from harken.store.atomic import NpyRowWriter, remove_stale_temps

FORMAT = "harken-export"
FORMAT_VERSION = 1
FORMATS = ("parquet", "npy")
SUFFIXES = {"parquet": ".parquet", "npy": ".npy"}
#: Rows per Parquet row group (and per block copied): 4096 × 512 float32 is 8 MiB.
ROW_GROUP = 4096
_INSTALL_PYARROW = "pip install 'harken[parquet]' (or pip install pyarrow)"


@dataclass
class ExportRows:
    """What an export writes: embeddings and, per row, the clip they belong to.

    Attributes:
        embeddings: float32 ``[N, D]`` (typically a read-only memory map).
        clip_ids: One clip id per row.
        paths: One file (or ``<shard>#<member>``) per row.
        starts: Span start per row (None: file start).
        ends: Span end per row (None: file end).
        labels: Label column → class per row.
        pipeline: What produced the embeddings (preprocessing version, encoder / joint space).
        source: What was exported (the index folder, or the dataset).
        skipped: ``[{"file", "reason"}]`` of clips left out.
    """

    embeddings: np.ndarray
    clip_ids: list[str]
    paths: list[str]
    starts: list[float | None]
    ends: list[float | None]
    labels: list[dict[str, str]]
    pipeline: dict
    source: str
    skipped: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.embeddings)
        lengths = {len(x) for x in (self.clip_ids, self.paths, self.starts, self.ends, self.labels)}
        if lengths != {n}:
            raise DataError(f"{self.source}: {n} embedding rows but clip lists of {lengths}")

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def manifest(self) -> dict:
        """The export's record, without the per-row clips (Parquet has them as columns; the
        ``.npy`` manifest streams them after this record: :func:`write_manifest`)."""
        from harken import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "harken_version": __version__,
            "pipeline": self.pipeline,
            "source": self.source,
            "rows": len(self.embeddings),
            "dim": self.dim,
            "dtype": "float32",
            "row_order": "the source's order: index rows, or the dataset's clips minus skipped",
            "skipped": self.skipped,
        }

    def clips(self) -> Iterator[dict]:
        """Each row's ``{"clip_id", "path", "start", "end", "labels"}``, in row order."""
        for c, p, s, e, lab in zip(
            self.clip_ids, self.paths, self.starts, self.ends, self.labels, strict=True
        ):
            yield {"clip_id": c, "path": p, "start": s, "end": e, "labels": lab}


# --- sources -----------------------------------------------------------------------------------


def index_rows(folder: str | os.PathLike) -> ExportRows:
    """The rows of an index folder written by ``harken index`` (embeddings memory-mapped).

    Raises:
        DataError: not a harken index, or its files are corrupt (see
            :meth:`~harken.store.index.EmbeddingIndex.load`).
    """
    from harken.store.index import _read_files, _read_header

    folder = Path(folder)
    header = _read_header(folder)
    files = list(_read_files(folder, header, verify=True))
    emb = _mapped_embeddings(folder, header)
    meta = header.get("meta") or {}
    n = len(files)
    clip_ids = list(meta.get("clips") or files)
    spans = meta.get("spans") or [[None, None]] * n
    labels = meta.get("labels") or [{}] * n
    pipeline = {
        "kind": "index",
        "space": meta.get("space"),
        "space_config": meta.get("space_config"),
        "search_backend": header["backend"],
    }
    return ExportRows(
        emb,
        clip_ids,
        files,
        [s[0] for s in spans],
        [s[1] for s in spans],
        [dict(x) for x in labels],
        pipeline,
        str(folder.resolve()),
        list(meta.get("skipped", [])),
    )


def _mapped_embeddings(folder: Path, header: dict) -> np.ndarray:
    """An index's ``embeddings.npy`` as a read-only memory map, its sha256 checked in blocks
    (as :meth:`~harken.store.index.EmbeddingIndex.load` checks it, without loading it whole).

    Raises:
        DataError: missing, unreadable, of another shape or dtype, or changed since it was saved.
    """
    path = folder / "embeddings.npy"
    hint = "rebuild it with `harken index`"
    try:
        emb = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{folder}: embeddings.npy missing; {hint}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); {hint}") from exc
    expected = (header["count"], header["dim"])
    if emb.dtype != np.float32 or emb.shape != expected or not emb.flags.c_contiguous:
        raise DataError(f"{path} holds {emb.dtype} {emb.shape}, not float32 {expected}; {hint}")
    digest = hashlib.sha256()
    for lo in range(0, len(emb), ROW_GROUP):
        digest.update(np.ascontiguousarray(emb[lo : lo + ROW_GROUP]).tobytes())
    if digest.hexdigest() != header["embeddings_sha256"]:
        raise DataError(f"{path} does not match its sha256 in index.json (changed); {hint}")
    return emb


@contextlib.contextmanager
def dataset_rows(
    name: str, clips: Sequence[Clip], encoder, store, near: Path, strict: bool = False
):
    """Context: the rows of a dataset's clips embedded by ``encoder`` through ``store``.

    The embeddings stream from the store into a temporary memory-mapped ``.npy`` beside
    ``near`` (removed on leaving the context), so memory stays flat in the number of clips.

    Args:
        name: The dataset's name (its feature-store folder).
        clips: Its clips.
        encoder: An audio (or image) encoder.
        store: The :class:`~harken.store.features.FeatureStore`.
        near: The output path; the temporary file goes into its folder.
        strict: Fail on the first unusable clip instead of leaving it out.
    """
    from harken.store.features import PREPROCESSING_VERSION

    tmp = Path(tempfile.mkdtemp(dir=near.parent, prefix=f".{near.name}.", suffix=".tmp"))
    try:
        target = tmp / "rows.npy"
        with NpyRowWriter(target, len(clips)) as writer:
            report = store.fill(name, encoder, clips, writer.write, skip_bad=not strict)
            bad = set(report.bad_positions)
            kept = [i for i in range(len(clips)) if i not in bad]
            if not kept:
                first = report.bad[0].reason if report.bad else "the dataset has no clips"
                raise DataError(f"{name}: none of the {len(clips)} clips could be used; {first}")
            writer.commit(kept)
        chosen = [clips[i] for i in kept]
        pipeline = {
            "kind": "feature-store",
            "preprocessing_version": PREPROCESSING_VERSION,
            "encoder": encoder.name,
            "encoder_config": encoder.config(),
        }
        yield ExportRows(
            np.load(target, mmap_mode="r", allow_pickle=False),
            [c.clip_id for c in chosen],
            [c.source or str(c.audio_path) for c in chosen],
            [c.start for c in chosen],
            [c.end for c in chosen],
            [dict(c.labels) for c in chosen],
            pipeline,
            name,
            [{"file": b.file, "reason": b.reason} for b in report.bad],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- output checks -----------------------------------------------------------------------------


def manifest_file(out: str | os.PathLike) -> Path:
    """The manifest beside an ``.npy`` export: ``emb.npy`` → ``emb.json``."""
    return Path(out).with_suffix(".json")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"--format parquet needs pyarrow: {_INSTALL_PYARROW}") from None
    return pa, pq


def _is_our_parquet(path: Path) -> bool:
    _, pq = _pyarrow()
    try:
        meta = pq.read_schema(path).metadata or {}
        record = json.loads(meta.get(b"harken", b"{}"))
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def _is_our_manifest(path: Path) -> bool:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def check_out(out: str | os.PathLike, fmt: str | None = None) -> tuple[Path, str]:
    """The output path and format, checked before any work.

    Args:
        out: ``*.parquet`` or ``*.npy``.
        fmt: ``parquet`` or ``npy``; None: from the suffix of ``out``.

    Raises:
        ConfigError: an unknown format, a suffix that does not match it, a missing folder, or an
            existing file (or ``.npy`` manifest) that harken's export did not write.
    """
    out = Path(out)
    if fmt is None:
        fmt = next((f for f, s in SUFFIXES.items() if out.suffix.lower() == s), None)
        if fmt is None:
            raise ConfigError(
                f"--out {out}: give --format parquet or npy, or an output ending in "
                ".parquet or .npy"
            )
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out.suffix.lower() != SUFFIXES[fmt]:
        raise ConfigError(f"--out {out} must end in {SUFFIXES[fmt]} for --format {fmt}")
    if out.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; give a file such as {out / ('emb' + SUFFIXES[fmt])}"
        )
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it first")
    hint = "choose another name or remove it yourself"
    if fmt == "parquet":
        _pyarrow()
        if out.exists() and not _is_our_parquet(out):
            raise ConfigError(f"--out {out} exists and was not written by `harken export`; {hint}")
    else:
        sidecar = manifest_file(out)
        ours = _is_our_manifest(sidecar)
        if sidecar.exists() and not ours:
            raise ConfigError(
                f"{sidecar} exists and is not a `harken export` manifest (it would be replaced "
                f"by the manifest of {out.name}); {hint}"
            )
        if out.exists() and not ours:
            raise ConfigError(
                f"--out {out} exists and was not written by `harken export` (no export "
                f"manifest {sidecar.name} beside it); {hint}"
            )
    return out, fmt


# --- writers -----------------------------------------------------------------------------------


def write_npy(rows: ExportRows, out: Path, block: int | None = None) -> Path:
    """``out`` (float32 ``[N, D]``) and its manifest, each written atomically, in blocks of
    ``block`` rows (default :data:`ROW_GROUP`)."""
    n = len(rows.embeddings)
    block = block or ROW_GROUP
    with NpyRowWriter(out, n) as writer:
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            writer.write(np.arange(lo, hi), np.asarray(rows.embeddings[lo:hi], np.float32))
        write_manifest(rows, manifest_file(out))
        writer.commit(list(range(n)))
    return out


def write_manifest(rows: ExportRows, path: Path) -> None:
    """The ``.npy`` manifest: :meth:`ExportRows.manifest` plus ``clips``, one JSON line per
    row, streamed to a temporary file and renamed into place (memory flat in rows)."""
    head = json.dumps(rows.manifest(), indent=1, ensure_ascii=False)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(head[: -len("\n}")] + ',\n "clips": [')
            for i, clip in enumerate(rows.clips()):
                f.write(("\n  " if i == 0 else ",\n  ") + json.dumps(clip, ensure_ascii=False))
            f.write("\n ]\n}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _table(pa, rows: ExportRows, lo: int, hi: int, schema):
    emb = np.ascontiguousarray(rows.embeddings[lo:hi], dtype=np.float32)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), rows.dim)
    labels = [list(x.items()) for x in rows.labels[lo:hi]]
    columns = [
        pa.array(rows.clip_ids[lo:hi], pa.string()),
        pa.array(rows.paths[lo:hi], pa.string()),
        pa.array(rows.starts[lo:hi], pa.float64()),
        pa.array(rows.ends[lo:hi], pa.float64()),
        pa.array(labels, pa.map_(pa.string(), pa.string())),
        embedding,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_parquet(rows: ExportRows, out: Path, row_group: int | None = None) -> Path:
    """``out`` as Parquet (see the module docstring), one row group per ``row_group`` rows
    (default :data:`ROW_GROUP`), written to a temporary file beside it and renamed into place."""
    pa, pq = _pyarrow()
    row_group = row_group or ROW_GROUP
    schema = pa.schema(
        [
            ("clip_id", pa.string()),
            ("path", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("labels", pa.map_(pa.string(), pa.string())),
            ("embedding", pa.list_(pa.float32(), rows.dim)),
        ],
        metadata={"harken": json.dumps(rows.manifest(), ensure_ascii=False)},
    )
    remove_stale_temps(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for lo in range(0, len(rows.embeddings), row_group):
                hi = min(lo + row_group, len(rows.embeddings))
                writer.write_table(_table(pa, rows, lo, hi, schema), row_group_size=row_group)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write(rows: ExportRows, out: Path, fmt: str) -> Path:
    """Write ``rows`` to ``out`` in ``fmt`` (``parquet`` or ``npy``)."""
    return write_parquet(rows, out) if fmt == "parquet" else write_npy(rows, out)
