"""The feature store: clip embeddings cached on disk per (dataset, encoder, preprocessing).

Layout::

    <root>/
        hashes.sqlite3              file content hashes, keyed by (path, size, mtime, ctime, inode)
        <dataset>/<encoder name>-<config hash>/
            encoder.json            the encoder's config and harken's preprocessing version
            shard-<sha256>.npz      keys [n] + embeddings [n, D], one file per finished batch

**Keys.** A clip's key is the sha256 of the bytes of the file its encoder reads (the audio
file; for image encoders the video file) and its span (start, end) — not its path or id: a
file rewritten with other audio is re-encoded even when its size is unchanged, and identical
files share one embedding. File hashes are remembered in ``hashes.sqlite3`` (WAL, busy timeout:
several processes may share it), so an unchanged file is not read again. The folder's config
hash covers the encoder's ``config()`` and :data:`PREPROCESSING_VERSION`, so changing
decoding, resampling or clip policy re-encodes.

**Shards.** Each shard's file name carries the sha256 of its bytes; a truncated or altered
shard is detected on reading, renamed to ``*.corrupt`` (with a warning naming it) and its clips
are encoded again. Files the store did not write are ignored, never deleted. Shards are written
to uniquely named temporary files and renamed into place, so two processes filling one store
never corrupt it (the same clips and embeddings give byte-identical shards), and ``kill -9``
loses at most the batch in flight (its temporary file is removed by a later run once it is an
hour old). A job encoding into a folder holds its ``.encoding.lock`` (:func:`encoding_lock`):
a second job meeting it waits and then reuses its shards, so no clip is encoded twice.

**Bad clips.** :meth:`FeatureStore.get` stops at the first clip that cannot be used (after
keeping the finished shards); :meth:`FeatureStore.get_usable` skips unusable clips (missing,
empty, silent, corrupt) and lists them, and :meth:`FeatureStore.fill` streams rows to a callback
so that callers (``harken embed``) never hold every embedding at once.

Encoding itself is the pure function :func:`encode_clips` over a batch of clips; an engine
(:mod:`harken.store.engines`: ``local``, a ``process`` pool, ``ray``) maps it over workers,
which write their shards straight into the folder, and :meth:`FeatureStore.fill` reads each
finished shard back — the same bytes whichever engine wrote them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harken.data.audio import load_audio
from harken.data.manifest import Clip
from harken.encoders.base import Encoder, config_hash
from harken.encoders.stream import embed_audio_file, is_long_clip
from harken.encoders.threads import around_encoding
from harken.errors import AudioError, DataError, VideoError
from harken.store.atomic import atomic_write_bytes, atomic_write_text, remove_stale_temps

if TYPE_CHECKING:
    from harken.store.engines import Engine

log = logging.getLogger(__name__)

#: Version of harken's decoding / resampling / clip policy; part of every store folder's key.
#: Bump it when any of them changes, so stored embeddings are recomputed.
PREPROCESSING_VERSION = 2

#: Decoded samples (or pixels) held before they are embedded: 32 Mi float32 values, 128 MiB, so
#: a batch of long clips cannot grow memory (a shard of 64 four-minute 48 kHz clips would hold
#: 2.9 GB at once).
MAX_DECODED_VALUES = 32 * 2**20

_KEY_FORMAT = "harken-clip-key-1"
_SHARD_NAME = re.compile(r"^shard-([0-9a-f]{64})\.npz$")
_BAD_CLIP_ERRORS = (AudioError, DataError)  # VideoError is a DataError

#: ``sink(positions, rows)``: rows ``[n, D]`` for the clips at ``positions`` of the request.
Sink = Callable[[np.ndarray, np.ndarray], None]


def default_cache_dir() -> Path:
    """``$HARKEN_CACHE_DIR`` or ``~/.cache/harken``."""
    return Path(os.environ.get("HARKEN_CACHE_DIR", Path.home() / ".cache" / "harken"))


# --- content hashes ----------------------------------------------------------------------------


def _missing(path: Path, video: bool) -> Exception:
    error = VideoError if video else AudioError
    if path.is_dir():
        return error(f"{path}: is a folder, expected a media file")
    return error(f"{path}: file not found (check the path, or the dataset's --data-dir)")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (read in blocks)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class HashCache:
    """Content hashes of files, persisted in SQLite and reused while a file is unchanged.

    A row is reused only when the file's resolved path, size, ``mtime_ns``, ``ctime_ns`` and
    inode all still match, so any rewrite (even one keeping the size) is hashed again. SQLite in
    WAL mode with a busy timeout lets several processes read and write the cache at once.

    Args:
        path: The database file (created on first use).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self.hashed = 0  # files read and hashed by this object (the rest came from the cache)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 60000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT)"
            )
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def digest(self, path: Path, video: bool = False) -> str:
        """sha256 of ``path``'s bytes, from the cache when the file is unchanged.

        Raises:
            AudioError (VideoError for ``video``): the file is missing or unreadable.
        """
        path = Path(path)
        try:
            resolved = str(path.resolve())
            st = os.stat(resolved)
        except OSError:
            raise _missing(path, video) from None
        if not os.path.isfile(resolved):
            raise _missing(path, video)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        db = self._connect()
        row = db.execute(
            "SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM files WHERE path = ?", (resolved,)
        ).fetchone()
        if row is not None and tuple(row[:4]) == stamp:
            return row[4]
        try:
            digest = file_sha256(Path(resolved))
        except OSError as exc:
            error = VideoError if video else AudioError
            raise error(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        self.hashed += 1
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", (resolved, *stamp, digest)
        )
        return digest


def clip_key(clip: Clip, hashes: HashCache, modality: str = "audio") -> str:
    """Content key of one clip: the sha256 of the file an encoder of ``modality`` reads and the
    clip's span — independent of the clip's id and path.

    Audio encoders read ``audio_path``; image encoders read ``video_path`` (else the clip's own
    file, a video container), so the key covers exactly the bytes its embedding depends on.

    Raises:
        AudioError / VideoError: that file is missing or unreadable.
    """
    if modality == "image":
        video = clip.video_path is not None
        digest = hashes.digest(clip.video_path if video else clip.audio_path, video=True)
        source = f"video:{digest}"
    else:
        source = f"audio:{hashes.digest(clip.audio_path)}"
    blob = f"{_KEY_FORMAT}|{source}|{clip.start}|{clip.end}"
    return hashlib.sha256(blob.encode()).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """Short sha256 of an array's bytes (the feature hashes of a run manifest)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


# --- encoding ----------------------------------------------------------------------------------


def _decode(encoder: Encoder, clip: Clip) -> np.ndarray:
    """The encoder's input for one clip: its resampled mono wave, or for image encoders the
    middle RGB frame of its span (ClipClap §4.1: "the middle frame is passed through the image
    encoder") from ``video_path``, else the clip's own file when that is a video container.
    An image encoder with a ``frames_per_clip`` attribute (:class:`~harken.encoders.base.
    FramesMean`) gets that many frames sampled over the span instead, ``uint8 [k, H, W, 3]``.

    Raises:
        AudioError / VideoError: naming the clip id and the file.
    """
    if encoder.modality == "image":
        from harken.data.video import read_frames

        path = clip.video_path or clip.audio_path
        frames = getattr(encoder, "frames_per_clip", None)
        try:
            if frames is not None:
                return read_frames(path, frames, start=clip.start, end=clip.end)
            return read_frames(path, 1, start=clip.start, end=clip.end)[0]
        except VideoError as exc:
            raise VideoError(f"clip {clip.clip_id!r}: {exc}") from exc
    try:
        wave, _ = load_audio(clip.audio_path, encoder.sample_rate, start=clip.start, end=clip.end)
    except AudioError as exc:
        raise AudioError(f"clip {clip.clip_id!r}: {exc}") from exc
    return wave


def encode_clips(encoder: Encoder, clips: Sequence[Clip]) -> np.ndarray:
    """Pure function: decode, downmix and resample ``clips`` for ``encoder`` and embed them.

    Returns:
        float32 ``[len(clips), encoder.dim]`` in the order of ``clips``.

    Raises:
        AudioError / VideoError: naming the clip id and file that could not be used.
    """
    emb, _, _ = _encode(encoder, clips, skip_bad=False)
    return emb


@dataclass(frozen=True)
class BadClip:
    """A clip that could not be embedded, and why (the message names its file)."""

    clip: Clip
    reason: str

    @property
    def file(self) -> str:
        return self.clip.source or str(self.clip.audio_path)


def _bad(clip: Clip, exc: Exception) -> BadClip:
    reason = str(exc)
    if clip.source is not None:  # a copy harken made (a WebDataset member): name the original
        reason = reason.replace(str(clip.audio_path), clip.source)
    name = clip.source or str(clip.audio_path)
    if name not in reason and str(clip.video_path) not in reason:
        reason = f"{name}: {reason}"
    return BadClip(clip, reason)


def encode_usable(
    encoder: Encoder, clips: Sequence[Clip]
) -> tuple[np.ndarray, list[int], list[BadClip]]:
    """:func:`encode_clips` that skips unusable clips instead of raising.

    Returns:
        ``(embeddings [len(kept), D], kept indices into clips, bad clips)``. A clip whose
        embedding is NaN/inf counts as bad.
    """
    return _encode(encoder, clips, skip_bad=True)


@around_encoding  # the encoder's measured thread counts, restored afterwards
def _encode(
    encoder: Encoder, clips: Sequence[Clip], skip_bad: bool
) -> tuple[np.ndarray, list[int], list[BadClip]]:
    """Embed ``clips``: ordinary clips decoded in memory and embedded in one batch; audio clips
    longer than :data:`~harken.encoders.stream.LONG_CLIP_SECONDS` streamed block by block
    (memory flat in clip length). With ``skip_bad`` unusable clips are returned as
    :class:`BadClip` instead of raised."""
    inputs: list[np.ndarray] = []
    batched: list[int] = []
    rows: dict[int, np.ndarray] = {}
    bad: list[BadClip] = []

    def flush() -> None:  # embedding in sub-batches changes no row (encoders are per-item)
        if inputs:
            emb = np.asarray(encoder.embed(inputs), dtype=np.float32)
            rows.update(zip(batched, emb, strict=True))
            inputs.clear()
            batched.clear()

    for i, clip in enumerate(clips):
        try:
            if encoder.modality == "audio" and _is_long(clip):
                rows[i] = _stream(encoder, clip)
            else:
                inputs.append(_decode(encoder, clip))
                batched.append(i)
        except _BAD_CLIP_ERRORS as exc:
            if not skip_bad:
                raise
            bad.append(_bad(clip, exc))
        if sum(x.size for x in inputs) > MAX_DECODED_VALUES:
            flush()
    flush()
    kept = sorted(rows)
    if not kept:
        return np.zeros((0, encoder.dim), np.float32), [], bad
    emb = np.stack([rows[i] for i in kept]).astype(np.float32, copy=False)
    if not skip_bad:
        return emb, kept, bad
    finite = np.isfinite(emb).all(axis=1)
    for j in np.flatnonzero(~finite):
        clip = clips[kept[j]]
        bad.append(_bad(clip, AudioError(f"{clip.audio_path}: the encoder returned NaN/inf")))
    return emb[finite], [k for k, ok in zip(kept, finite, strict=True) if ok], bad


def _is_long(clip: Clip) -> bool:
    try:
        return is_long_clip(clip.audio_path, clip.start, clip.end)
    except AudioError as exc:
        raise AudioError(f"clip {clip.clip_id!r}: {exc}") from exc


def _stream(encoder: Encoder, clip: Clip) -> np.ndarray:
    try:
        return embed_audio_file(encoder, clip.audio_path, clip.start, clip.end)
    except AudioError as exc:
        raise AudioError(f"clip {clip.clip_id!r}: {exc}") from exc


# --- the store ---------------------------------------------------------------------------------


@dataclass
class FillReport:
    """What one :meth:`FeatureStore.fill` did (the store's own counts).

    Attributes:
        clips: Clips requested.
        cached: Clips served from finished shards.
        shards_reused: Finished shards that served at least one clip.
        encoded: Distinct clips encoded now.
        shards_written: Shards written now.
        corrupt: Shards found corrupt and moved aside.
        bad: Clips that could not be used (only with ``skip_bad``), in request order.
        bad_positions: Their positions in the request.
    """

    clips: int = 0
    cached: int = 0
    shards_reused: int = 0
    encoded: int = 0
    shards_written: int = 0
    corrupt: list[str] = field(default_factory=list)
    bad: list[BadClip] = field(default_factory=list)
    bad_positions: list[int] = field(default_factory=list)


@dataclass
class Usable:
    """Embeddings of the usable clips of a request (:meth:`FeatureStore.get_usable`).

    Attributes:
        embeddings: float32 ``[len(kept), D]``, in request order.
        kept: Indices of the usable clips in the request.
        skipped: The clips that could not be used, with the reason.
        report: The store's counts.
    """

    embeddings: np.ndarray
    kept: list[int]
    skipped: list[BadClip]
    report: FillReport


class FeatureStore:
    """Embeddings per (dataset, encoder, preprocessing), reused across runs.

    Args:
        root: Store folder (default ``<cache dir>/features``).
        shard_size: Clips encoded per shard (the unit of resumption and of work).
        progress: Show a progress bar and the reuse summary while encoding.
        engine: Where missing shards are encoded: an :class:`~harken.store.engines.Engine`
            or a registered name (``"local"``: this process; ``"process"``; ``"ray"``).
        workers: Workers of the engine (``local`` ignores it).
    """

    def __init__(
        self,
        root: Path | None = None,
        shard_size: int = 64,
        progress: bool = True,
        engine: Engine | str = "local",
        workers: int = 1,
    ):
        self.root = Path(root) if root is not None else default_cache_dir() / "features"
        self.shard_size = shard_size
        self.progress = progress
        self.engine = engine
        self.workers = workers
        self.hashes = HashCache(self.root / "hashes.sqlite3")

    def folder(self, dataset: str, encoder: Encoder) -> Path:
        safe = encoder.name.replace("/", "_").replace(":", "_")
        key = {"encoder": encoder.config(), "preprocessing_version": PREPROCESSING_VERSION}
        return self.root / dataset / f"{safe}-{config_hash(key)}"

    def get(self, dataset: str, encoder: Encoder, clips: Sequence[Clip]) -> np.ndarray:
        """Embeddings of ``clips`` (float32 ``[N, D]``, in order), encoding only missing ones.

        Raises:
            AudioError / VideoError: at the first unusable clip (finished shards are kept).
        """
        return self._collect(dataset, encoder, clips, skip_bad=False).embeddings

    def get_usable(
        self, dataset: str, encoder: Encoder, clips: Sequence[Clip], skip_bad: bool = True
    ) -> Usable:
        """Embeddings of the usable clips of ``clips``; unusable ones (missing, empty, silent,
        corrupt, NaN embedding) are skipped and listed in :attr:`Usable.skipped`.

        Args:
            dataset: The store's dataset folder name.
            encoder: The encoder.
            clips: The clips.
            skip_bad: False: raise at the first unusable clip instead (as :meth:`get`).
        """
        return self._collect(dataset, encoder, clips, skip_bad=skip_bad)

    def _collect(self, dataset, encoder, clips, skip_bad: bool) -> Usable:
        out: list[np.ndarray | None] = [None]

        def sink(positions: np.ndarray, rows: np.ndarray) -> None:
            if out[0] is None:
                out[0] = np.zeros((len(clips), rows.shape[1]), np.float32)
            out[0][positions] = rows

        report = self.fill(dataset, encoder, clips, sink, skip_bad=skip_bad)
        bad = set(report.bad_positions)
        kept = [i for i in range(len(clips)) if i not in bad]
        emb = out[0] if out[0] is not None else np.zeros((0, 0), np.float32)
        if len(kept) < len(clips):
            emb = emb[kept] if kept else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0))
        return Usable(emb.astype(np.float32, copy=False), kept, list(report.bad), report)

    def fill(
        self,
        dataset: str,
        encoder: Encoder,
        clips: Sequence[Clip],
        sink: Sink,
        skip_bad: bool = False,
        engine: Engine | str | None = None,
        workers: int | None = None,
    ) -> FillReport:
        """Stream the embeddings of ``clips`` to ``sink``, encoding and storing missing ones.

        Finished shards are read one at a time; missing clips go to the engine as
        :class:`~harken.store.engines.ShardTask` s of ``shard_size`` clips, whose workers write
        their shards into the store, and each finished shard is read back and served, one at a
        time — so the driver's memory does not grow with the number of clips (beyond their
        keys), whichever engine encodes. While it encodes, the job holds the folder's
        :func:`encoding_lock`; a job that had to wait for it first serves what the other one
        finished.

        Args:
            dataset: The store's dataset folder name.
            encoder: The encoder.
            clips: The clips; identical files with the same span share one embedding.
            sink: Called with ``(positions, rows)`` for every block of clips served, in no
                particular order; every usable position is served exactly once.
            skip_bad: List unusable clips in :attr:`FillReport.bad` instead of raising.
            engine: Overrides the store's engine for this call.
            workers: Overrides the store's worker count for this call.

        Raises:
            AudioError / VideoError: an unusable clip when not ``skip_bad``.
            ConfigError: the engine cannot run (unknown, missing package, encoder that a
                worker cannot rebuild).
        """
        report = FillReport(clips=len(clips))
        folder = self._prepare(dataset, encoder)
        wanted = self._keys(clips, encoder.modality, report, skip_bad)
        self._serve_cached(folder, wanted, sink, report)
        what = f"{dataset} with {encoder.name}"
        with contextlib.ExitStack() as held:
            # one job encodes into a folder at a time; another waits, then reuses its shards
            if wanted and held.enter_context(encoding_lock(folder, what)):
                self._serve_cached(folder, wanted, sink, report)
            self._encode_missing(
                folder,
                what,
                encoder,
                clips,
                wanted,
                sink,
                report,
                skip_bad=skip_bad,
                engine=engine,
                workers=workers,
            )
        order = np.argsort(report.bad_positions, kind="stable").tolist()
        report.bad = [report.bad[i] for i in order]
        report.bad_positions = [report.bad_positions[i] for i in order]
        return report

    def _encode_missing(
        self,
        folder: Path,
        what: str,
        encoder: Encoder,
        clips: Sequence[Clip],
        wanted: dict,
        sink: Sink,
        report: FillReport,
        *,
        skip_bad: bool,
        engine,
        workers,
    ) -> None:
        """Encode the keys still in ``wanted`` on the engine, serving each finished shard."""
        from tqdm.auto import tqdm  # here, not at the top: importing harken stays fast

        from harken.store.engines import ShardTask, get_engine, recipe_of

        todo = list(wanted)  # insertion order: first request position of each key
        summary = (
            f"encode {what}: {report.cached} clips from "
            f"{report.shards_reused} finished shards, encoding {len(todo)}"
        )
        log.info(summary)
        if todo and self.progress:
            tqdm.write(summary, file=sys.stderr)
        bar = tqdm(
            total=len(todo),
            desc=f"encode {what}",
            unit="clip",
            disable=not self.progress or not todo,
        )
        engine = self.engine if engine is None else engine
        workers = self.workers if workers is None else workers
        if isinstance(engine, str):
            engine = get_engine(engine)

        def tasks():
            for lo in range(0, len(todo), self.shard_size):
                batch = tuple(todo[lo : lo + self.shard_size])
                first = tuple(clips[wanted[key][0]] for key in batch)
                yield ShardTask(str(folder), batch, first, skip_bad)

        try:
            if todo:
                for done in engine.run(recipe_of(encoder), tasks(), workers):
                    self._serve_done(done, clips, wanted, sink, report)
                    bar.update(len(done.keys) + len(done.bad))
        finally:
            bar.close()

    # --- steps of fill ---------------------------------------------------------------------

    def _prepare(self, dataset: str, encoder: Encoder) -> Path:
        folder = self.folder(dataset, encoder)
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob(".shard-*.npz.*.tmp"):  # left by a killed writer
            match = _SHARD_NAME.match(tmp.name[1:].split(".npz.")[0] + ".npz")
            if match is not None:
                remove_stale_temps(folder / f"shard-{match.group(1)}.npz")
        meta = folder / "encoder.json"
        if not meta.exists():
            record = {"encoder": encoder.config(), "preprocessing_version": PREPROCESSING_VERSION}
            atomic_write_text(meta, json.dumps(record, indent=2, default=str) + "\n")
        return folder

    def _keys(self, clips, modality: str, report: FillReport, skip_bad: bool) -> dict:
        """Content key → positions in ``clips`` (unhashable clips go to ``report.bad``)."""
        wanted: dict[str, list[int]] = {}
        for i, clip in enumerate(clips):
            try:
                key = clip_key(clip, self.hashes, modality)
            except _BAD_CLIP_ERRORS as exc:
                if not skip_bad:
                    raise type(exc)(f"clip {clip.clip_id!r}: {exc}") from exc
                report.bad.append(_bad(clip, exc))
                report.bad_positions.append(i)
                continue
            wanted.setdefault(key, []).append(i)
        return wanted

    def _serve_cached(self, folder: Path, wanted: dict, sink: Sink, report: FillReport) -> None:
        """Serve (and drop from ``wanted``) every key found in a valid finished shard."""
        for shard in sorted(folder.iterdir()):
            if not wanted:
                break
            match = _SHARD_NAME.match(shard.name)
            if match is None or not shard.is_file():
                continue  # temporary, corrupt-marked or foreign files: never ours to touch
            loaded = _read_shard(shard, match.group(1))
            if loaded is None:
                _move_aside(shard)
                report.corrupt.append(str(shard))
                continue
            keys, emb = loaded
            served = False
            for row, key in enumerate(keys):
                positions = wanted.pop(key, None)
                if positions is not None:
                    sink(np.asarray(positions), np.repeat(emb[row : row + 1], len(positions), 0))
                    report.cached += len(positions)
                    served = True
            report.shards_reused += served

    def _serve_done(self, done, clips, wanted: dict, sink: Sink, report: FillReport) -> None:
        """Serve one finished task: read its shard back (one at a time) and record its bad
        clips. Served keys leave ``wanted``."""
        for key, reason in done.bad:  # every request position of a bad key is bad
            positions = wanted.pop(key)
            report.bad += [BadClip(clips[p], reason) for p in positions]
            report.bad_positions += positions
        if done.shard is None:
            return
        shard = Path(done.shard)
        match = _SHARD_NAME.match(shard.name)
        loaded = _read_shard(shard, match.group(1)) if match is not None else None
        if loaded is None:
            raise DataError(
                f"feature store shard {shard}: a worker reported it written, but it cannot be "
                "read here; workers and this process must share the store folder "
                f"({shard.parent})"
            )
        index = {key: row for row, key in enumerate(loaded[0])}
        for key in done.keys:
            positions = wanted.pop(key)
            row = loaded[1][index[key]]
            sink(np.asarray(positions), np.repeat(row[None], len(positions), 0))
            if done.reused:
                report.cached += len(positions)
            else:
                report.encoded += 1
        if done.reused:
            report.shards_reused += 1
        else:
            report.shards_written += 1


#: File in a store folder that a job holds locked (``flock``) while it encodes into the folder.
LOCK_NAME = ".encoding.lock"


@contextlib.contextmanager
def encoding_lock(folder: Path, what: str = "") -> Iterator[bool]:
    """Hold the folder's encoding lock: one job at a time encodes into a store folder.

    A second job (another ``harken`` command, another process of ``harken demo``) asking for
    the same folder waits here — saying so once on stderr — and then finds the first job's
    shards finished, so no clip is encoded twice when two jobs meet. The lock is an ``flock``
    on :data:`LOCK_NAME`, released by the operating system when its holder exits, however it
    exits. Where the file system cannot lock (some network file systems) jobs go on unlocked:
    at worst two jobs encode the same clips (identical shards, never a corrupt one).

    Yields:
        True when this job had to wait for another one.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (never wrong, at worst double work)
        yield False
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only store folder: the shards say what is done
        yield False
        return
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _bootstrapping():  # a worker re-running its parent's unguarded main module:
                yield False  # waiting would hang it; going on lets the pool report why
                return
            print(
                f"encode {what}: another harken job is encoding into {folder}; waiting for it, "
                "then using its shards",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        except OSError as exc:  # ENOLCK: no locking here
            log.debug("no encoding lock in %s: %s", folder, exc)
        yield waited
    finally:
        os.close(fd)  # releases the lock


def _bootstrapping() -> bool:
    """Whether this is a spawned worker still importing its parent's main module (a script
    without ``if __name__ == '__main__':`` that fills a store at import runs the fill again in
    every worker, while the parent holds the folder's lock)."""
    import multiprocessing

    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _write_shard(folder: Path, keys: list[str], embeddings: np.ndarray) -> Path:
    """Write one shard named by the sha256 of its bytes (atomically)."""
    data = _npz_bytes(keys=np.asarray(keys, dtype="<U64"), embeddings=embeddings)
    path = folder / f"shard-{hashlib.sha256(data).hexdigest()}.npz"
    atomic_write_bytes(path, data)
    return path


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    """An ``.npz`` archive (as ``np.savez`` writes) with fixed timestamps: the same arrays give
    the same bytes, hence the same shard name, whoever writes them and when."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy"), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def _read_shard(path: Path, checksum: str) -> tuple[list[str], np.ndarray] | None:
    """A shard's keys and embeddings, or None (with a warning) when it is corrupt."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = f"unreadable ({exc.strerror or exc})"
    else:
        problem = "truncated or altered (its sha256 does not match its name)"
        if hashlib.sha256(data).hexdigest() == checksum:
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    keys, emb = z["keys"].tolist(), np.asarray(z["embeddings"], np.float32)
                if emb.ndim == 2 and len(keys) == len(emb):
                    return keys, emb
                problem = f"inconsistent ({len(keys)} keys, embeddings {emb.shape})"
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                problem = f"unreadable ({exc})"
    warnings.warn(
        f"feature store shard {path} is {problem}; moved aside to {path.name}.corrupt, its "
        "clips are encoded again",
        RuntimeWarning,
        stacklevel=4,
    )
    return None


def _move_aside(shard: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # another process moved it aside first
        os.replace(shard, shard.with_name(shard.name + ".corrupt"))
