"""The feature store: clip embeddings cached on disk per (dataset, encoder, preprocessing).

Layout::

    <root>/<dataset>/<encoder name>-<config hash>/
        encoder.json            the encoder's config (model id, pooling, clip policy)
        shard-<hash>.npz        keys [n] + embeddings [n, D], one file per finished batch

Every shard is written atomically as soon as its batch is encoded, so a killed run loses at
most the batch in flight and the next run encodes only what is missing. A clip's key hashes its
id, audio path, span and file size, so an edited file is re-encoded. The store is shared by
every run and command (``harken run``, ``demo``, ``embed``) that uses the same root.

Encoding itself is the pure function :func:`encode_clips` over a batch of clips, so it can be
mapped over workers or a cluster and the shards merged by simply copying them into the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from harken.data.audio import load_audio
from harken.data.manifest import Clip
from harken.encoders.base import Encoder, config_hash
from harken.encoders.stream import embed_audio_file, is_long_clip
from harken.errors import AudioError
from harken.store.atomic import atomic_save_npz, atomic_write_text


def default_cache_dir() -> Path:
    """``$HARKEN_CACHE_DIR`` or ``~/.cache/harken``."""
    return Path(os.environ.get("HARKEN_CACHE_DIR", Path.home() / ".cache" / "harken"))


def clip_key(clip: Clip) -> str:
    """Stable key of one clip's media: id, resolved path, span and file size (and the video
    file's path and size when the clip has one)."""

    def described(path: Path | None) -> str:
        if path is None:
            return ""
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        return f"{path.resolve()}|{size}"

    a = described(clip.audio_path)
    path, size = a.rsplit("|", 1)
    blob = f"{clip.clip_id}|{path}|{clip.start}|{clip.end}|{size}"
    if clip.video_path is not None:
        blob += f"|video:{described(clip.video_path)}"
    return hashlib.sha1(blob.encode()).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """Short sha256 of an array's bytes (the feature hashes of a run manifest)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def encode_clips(encoder: Encoder, clips: Sequence[Clip]) -> np.ndarray:
    """Pure function: decode, downmix and resample ``clips`` for ``encoder`` and embed them.

    Returns:
        float32 ``[len(clips), encoder.dim]`` in the order of ``clips``.

    Raises:
        AudioError: naming the clip id and file that could not be used.
    """
    if encoder.modality == "image":
        return _encode_frames(encoder, clips)
    waves, streamed = [], {}
    for i, clip in enumerate(clips):
        try:
            if is_long_clip(clip.audio_path, clip.start, clip.end):  # bounded memory
                streamed[i] = embed_audio_file(encoder, clip.audio_path, clip.start, clip.end)
                continue
            wave, _ = load_audio(
                clip.audio_path, encoder.sample_rate, start=clip.start, end=clip.end
            )
        except AudioError as exc:
            raise AudioError(f"clip {clip.clip_id!r}: {exc}") from exc
        waves.append(wave)
    if not streamed:
        return np.asarray(encoder.embed(waves), dtype=np.float32)
    out = np.zeros((len(clips), encoder.dim), np.float32)
    short = [i for i in range(len(clips)) if i not in streamed]
    if short:
        out[short] = np.asarray(encoder.embed(waves), dtype=np.float32)
    for i, row in streamed.items():
        out[i] = row
    return out


def _encode_frames(encoder: Encoder, clips: Sequence[Clip]) -> np.ndarray:
    """Image encoders: the middle RGB frame of each clip's span (ClipClap §4.1: "the middle
    frame is passed through the image encoder") from its video file (``video_path``, else the
    clip's own file when that is a video container)."""
    from harken.data.video import read_frames
    from harken.errors import VideoError

    frames = []
    for clip in clips:
        path = clip.video_path or clip.audio_path
        try:
            frames.append(read_frames(path, 1, start=clip.start, end=clip.end)[0])
        except VideoError as exc:
            raise VideoError(f"clip {clip.clip_id!r}: {exc}") from exc
    return np.asarray(encoder.embed(frames), dtype=np.float32)


class FeatureStore:
    """Embeddings per (dataset, encoder, preprocessing), reused across runs.

    Args:
        root: Store folder (default ``<cache dir>/features``).
        shard_size: Clips encoded per shard (the unit of resumption).
        progress: Show a progress bar while encoding.
    """

    def __init__(self, root: Path | None = None, shard_size: int = 64, progress: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir() / "features"
        self.shard_size = shard_size
        self.progress = progress

    def folder(self, dataset: str, encoder: Encoder) -> Path:
        safe = encoder.name.replace("/", "_").replace(":", "_")
        return self.root / dataset / f"{safe}-{config_hash(encoder.config())}"

    def _load(self, folder: Path) -> dict[str, np.ndarray]:
        table: dict[str, np.ndarray] = {}
        for shard in sorted(folder.glob("shard-*.npz")):
            with np.load(shard) as z:
                for key, row in zip(z["keys"].tolist(), z["embeddings"], strict=True):
                    table[key] = row
        return table

    def get(self, dataset: str, encoder: Encoder, clips: Sequence[Clip]) -> np.ndarray:
        """Embeddings of ``clips`` (float32 ``[N, D]``, in order), encoding only missing ones."""
        folder = self.folder(dataset, encoder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "encoder.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(encoder.config(), indent=2, default=str) + "\n")
        keys = [clip_key(c) for c in clips]
        table = self._load(folder)
        todo = [i for i, k in enumerate(keys) if k not in table]
        if todo:
            bar = tqdm(
                total=len(todo),
                desc=f"encode {dataset} with {encoder.name}",
                unit="clip",
                disable=not self.progress,
            )
            for lo in range(0, len(todo), self.shard_size):
                idx = todo[lo : lo + self.shard_size]
                emb = encode_clips(encoder, [clips[i] for i in idx])
                shard_keys = np.asarray([keys[i] for i in idx])
                name = hashlib.sha1("".join(shard_keys.tolist()).encode()).hexdigest()[:16]
                atomic_save_npz(folder / f"shard-{name}.npz", keys=shard_keys, embeddings=emb)
                for k, row in zip(shard_keys.tolist(), emb, strict=True):
                    table[k] = row
                bar.update(len(idx))
            bar.close()
        return np.stack([table[k] for k in keys]).astype(np.float32)
