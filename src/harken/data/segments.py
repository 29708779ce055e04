"""Cut annotated segments out of long recordings into short audio files (once, then cached).

EPIC-KITCHENS segments are spans of hour-long MP4 videos; decoding such a span for every encoder
and every run is slow. :func:`cut_segments` decodes each span once, downmixes it to mono,
resamples it and writes a 16-bit FLAC named by the clip id. The recordings are visited one at a
time, their segments in order of start time, so each file is opened once and decoded mostly
forward. Every file is written to a temporary name and renamed when complete, so a killed run
never leaves a partial file, and a rerun skips the segments already cut.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from harken.data.audio import SOUNDFILE_SUFFIXES, AvReader, downmix, resample
from harken.data.manifest import Clip, Manifest
from harken.errors import AudioError

if TYPE_CHECKING:
    from tqdm.auto import tqdm

MAX_NAME = 180


def segment_filename(clip_id: str, suffix: str = ".flac") -> str:
    """A safe, unique file name for ``clip_id`` (percent-escaped; long ids end in a hash)."""
    name = quote(clip_id, safe="-_.")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 17] + "-" + hashlib.sha1(clip_id.encode()).hexdigest()[:16]
    return name + suffix


class _SoundfileReader:
    """Span reader with the :class:`~harken.data.audio.AvReader` interface, for wav/flac/..."""

    def __init__(self, path: Path) -> None:
        import soundfile as sf

        self._file = sf.SoundFile(str(path))
        self.sample_rate = self._file.samplerate

    def read(self, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
        sr, frames = self.sample_rate, self._file.frames
        first = 0 if start is None else min(frames, max(0, round(start * sr)))
        last = frames if end is None else min(frames, round(end * sr))
        self._file.seek(first)
        return self._file.read(max(0, last - first), dtype="float32", always_2d=True), sr

    def close(self) -> None:
        self._file.close()


def _open(path: Path):
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            return _SoundfileReader(path)
        except (RuntimeError, OSError):  # libsndfile cannot read it: let FFmpeg try
            pass
    return AvReader(path)


def _write_flac(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), np.clip(wave, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _is_finished(path: Path, sample_rate: int) -> bool:
    if not path.is_file():
        return False
    import soundfile as sf

    try:
        return sf.info(str(path)).samplerate == sample_rate
    except RuntimeError:  # unreadable: cut it again
        return False


def cut_segments(
    manifest: Manifest,
    cache_dir: str | Path,
    sample_rate: int = 16000,
    *,
    progress: bool = True,
) -> Manifest:
    """Decode every clip's ``[start, end)`` span and store it as a mono 16-bit FLAC.

    Clips without a span are cut too (the whole file is converted). Segments whose file already
    exists at ``sample_rate`` are skipped. Files are named by clip id
    (:func:`segment_filename`) inside ``cache_dir``.

    Args:
        manifest: Clips with spans inside long recordings.
        cache_dir: Output folder (created if needed).
        sample_rate: Output rate in Hz.
        progress: Show a progress bar.

    Returns:
        A manifest with the same clip ids, labels and order whose clips point to the cut files,
        with ``start``/``end`` None and ``video_path`` None (the video span no longer matches;
        keep the input manifest for video).

    Raises:
        AudioError: naming the clip id and source file of the first segment that cannot be cut
            (unreadable recording, span outside it); segments cut before it are kept.
    """
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    outputs = {c.clip_id: cache_dir / segment_filename(c.clip_id) for c in manifest.clips}
    todo: dict[Path, list[Clip]] = defaultdict(list)
    for clip in manifest.clips:
        if not _is_finished(outputs[clip.clip_id], sample_rate):
            todo[Path(clip.audio_path)].append(clip)
    from tqdm.auto import tqdm  # here, not at the top: importing harken stays fast

    with tqdm(
        total=sum(map(len, todo.values())),
        desc=f"cut {manifest.name}",
        unit="segment",
        disable=not progress,
    ) as bar:
        for source, clips in todo.items():
            _cut_recording(
                source, sorted(clips, key=lambda c: c.start or 0.0), outputs, sample_rate, bar
            )
    cut = [
        replace(c, audio_path=outputs[c.clip_id], start=None, end=None, video_path=None)
        for c in manifest.clips
    ]
    return Manifest(manifest.name, cut, cache_dir)


def _cut_recording(
    source: Path, clips: list[Clip], outputs: dict[str, Path], sample_rate: int, bar: tqdm
) -> None:
    def fail(clip: Clip, why: str) -> AudioError:
        return AudioError(f"segment {clip.clip_id!r} of {source}: {why}")

    if not source.is_file():
        raise fail(clips[0], "the recording is not found; check media_dir or the manifest paths")
    try:
        reader = _open(source)
    except AudioError as exc:
        raise fail(clips[0], str(exc)) from exc
    except Exception as exc:  # FFmpeg's many error types: report them as one
        raise fail(
            clips[0],
            f"cannot open the recording ({type(exc).__name__}: {exc}); it may "
            "be corrupt or incomplete: download it again",
        ) from exc
    try:
        for clip in clips:
            span = f"[{clip.start}, {clip.end}) s"
            try:
                data, sr = reader.read(clip.start, clip.end)
            except Exception as exc:  # decoder failure inside the file
                raise fail(
                    clip,
                    f"cannot decode {span} ({type(exc).__name__}: {exc}); the "
                    "recording may be corrupt: download it again",
                ) from exc
            if len(data) == 0:
                raise fail(
                    clip,
                    f"no audio in {span}: the span lies beyond the end of the "
                    "recording; check the annotation or the file",
                )
            wave = resample(downmix(data), sr, sample_rate)
            _write_flac(outputs[clip.clip_id], wave, sample_rate)
            bar.update(1)
    finally:
        reader.close()
