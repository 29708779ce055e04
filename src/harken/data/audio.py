"""Audio decoding, explicit mono downmix, high-quality resampling and the clip-length policy.

Every encoder receives mono float32 waveforms at its own sample rate, produced here:

* **decode**: soundfile (wav/flac/ogg/mp3), PyAV/FFmpeg for anything else (the audio track of
  mp4/mkv/webm, m4a, ...); an optional ``[start, end)`` span in seconds.
* **downmix**: the mean of the channels (never a concatenation of channels).
* **resample**: soxr, "VHQ" quality.
* **clip policy** (:class:`ClipPolicy`): clips shorter than ``min_seconds`` are zero-padded at
  the end; clips longer than ``max_seconds`` are either split into windows whose embeddings are
  averaged (``long="window"``, the default: nothing of the clip is thrown away) or centre-cropped
  (``long="centre"``). No randomness anywhere: the same file always gives the same samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harken.errors import AudioError

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}


def downmix(wave: np.ndarray) -> np.ndarray:
    """Mono downmix: ``mono[t] = mean_c wave[t, c]`` for a ``[T, C]`` (or ``[T]``) array."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        return wave
    if wave.ndim != 2:
        raise ValueError(f"expected [samples] or [samples, channels], got shape {wave.shape}")
    return wave.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling with soxr (very-high-quality setting); identity when rates agree."""
    if sr_in == sr_out:
        return np.asarray(wave, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(wave, dtype=np.float32), sr_in, sr_out, quality="VHQ").astype(
        np.float32
    )


def _decode_soundfile(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        first = 0 if start is None else max(0, round(start * sr))
        last = f.frames if end is None else min(f.frames, round(end * sr))
        f.seek(min(first, f.frames))
        data = f.read(max(0, last - first), dtype="float32", always_2d=True)
    return data, sr


AV_PREROLL_SECONDS = 0.5
"""Seek this far before a span's start: codecs with overlapping frames (AAC, MP3, Opus, Vorbis)
decode the first packet after a seek wrongly (it lacks its predecessor), so that packet must fall
before the span. (Seeking straight to ``start`` corrupted the first ~1,024 samples of AAC spans.)"""

AV_SEEK_GAP_SECONDS = 30.0
""":class:`AvReader` decodes forward through gaps shorter than this instead of seeking."""


def _frame_to_array(frame) -> np.ndarray:
    """One decoded PyAV audio frame → float32 ``[samples, channels]`` in [-1, 1]."""
    arr = frame.to_ndarray()
    if arr.dtype.kind == "i":
        arr = arr.astype(np.float32) / float(2 ** (8 * arr.dtype.itemsize - 1))
    elif arr.dtype.kind == "u":
        half = float(2 ** (8 * arr.dtype.itemsize - 1))
        arr = (arr.astype(np.float32) - half) / half
    arr = arr.astype(np.float32, copy=False)
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return arr.reshape(channels, -1).T
    return arr.reshape(-1, channels)


class AvReader:
    """Span reader over the first audio track of one media file, opened once (PyAV/FFmpeg).

    Reads of increasing ``start`` (as when cutting many segments from one long recording) decode
    the file forward once; a read that starts before the buffered audio or more than
    :data:`AV_SEEK_GAP_SECONDS` after it seeks (:data:`AV_PREROLL_SECONDS` early). Times are
    seconds from the start of the audio stream.

    Args:
        path: Media file.

    Raises:
        AudioError: the file has no audio track.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        self._container = av.open(str(self.path))
        if not self._container.streams.audio:
            self._container.close()
            raise AudioError(f"{self.path}: the file has no audio track")
        self._stream = self._container.streams.audio[0]
        tb = self._stream.time_base
        self._offset = float(self._stream.start_time * tb) if self._stream.start_time else 0.0
        self._offset = max(0.0, self._offset)
        self.sample_rate: int = self._stream.codec_context.sample_rate or self._stream.rate
        self._frames = None
        self._chunks: list[np.ndarray] = []
        self._buf_t0 = 0.0
        self._buf_len = 0
        self._eof = False

    def __enter__(self) -> AvReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def _buf_end(self) -> float:
        return self._buf_t0 + self._buf_len / self.sample_rate

    def _restart(self, start: float) -> None:
        seek_to = max(0.0, start - AV_PREROLL_SECONDS)
        if self._frames is not None or seek_to > 0:
            target = int((seek_to + self._offset) / self._stream.time_base)
            self._container.seek(target, stream=self._stream, any_frame=False, backward=True)
        self._frames = self._container.decode(self._stream)
        self._chunks, self._buf_len, self._eof = [], 0, False
        self._buf_t0 = float("nan")  # set from the first decoded frame

    def _pull(self) -> bool:
        """Decode one more frame into the buffer; False at the end of the stream."""
        frame = next(self._frames, None)
        if frame is None:
            self._eof = True
            return False
        arr = _frame_to_array(frame)
        if frame.sample_rate and frame.sample_rate != self.sample_rate and not self._chunks:
            self.sample_rate = frame.sample_rate  # e.g. HE-AAC: the header gives half the rate
        t = float(frame.pts * frame.time_base) - self._offset if frame.pts is not None else None
        if not self._chunks:
            self._buf_t0 = t if t is not None else 0.0
        elif t is not None and t - self._buf_end > 1.0 / 1000:  # a gap in the stream: keep time
            gap = np.zeros(
                (round((t - self._buf_end) * self.sample_rate), arr.shape[1]), np.float32
            )
            self._chunks.append(gap)
            self._buf_len += len(gap)
        self._chunks.append(arr)
        self._buf_len += len(arr)
        return True

    def read(self, start: float | None = None, end: float | None = None) -> tuple[np.ndarray, int]:
        """Decode ``[start, end)`` seconds (None: from the beginning / to the end).

        Returns:
            ``(float32 [samples, channels], native sample rate)``; fewer samples (possibly none)
            where the span runs past the end of the stream.
        """
        start = 0.0 if start is None else max(0.0, start)
        if (
            self._frames is None
            or (not self._chunks and self._eof)
            or start < self._buf_t0 - 1e-6
            or start > self._buf_end + AV_SEEK_GAP_SECONDS
        ):
            self._restart(start)
        while not self._eof and (end is None or not self._chunks or self._buf_end < end):
            self._pull()
        if not self._chunks:
            return np.zeros((0, 1), np.float32), self.sample_rate
        data = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        lo = min(len(data), max(0, round((start - self._buf_t0) * self.sample_rate)))
        hi = len(data) if end is None else round((end - self._buf_t0) * self.sample_rate)
        out = data[lo : max(lo, min(hi, len(data)))].copy()
        # later reads start at or after this one: drop what lies before it
        self._chunks, self._buf_len = [data[lo:]], len(data) - lo
        self._buf_t0 += lo / self.sample_rate
        return out, self.sample_rate


def _decode_av(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    with AvReader(path) as reader:
        return reader.read(start, end)


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a mono float32 waveform.

    Args:
        path: Audio or video file.
        sample_rate: Resample to this rate; None keeps the file's rate.
        start: Span start in seconds (None = beginning).
        end: Span end in seconds (None = end of file).
        max_seconds: Refuse files longer than this (oversized uploads) instead of decoding them.

    Returns:
        ``(wave [T] float32, rate)``.

    Raises:
        AudioError: missing, unreadable, empty, oversized or entirely silent audio; the message
            names the file and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found (check the path, or the dataset's --data-dir)")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    if start is not None and end is not None and end <= start:
        raise AudioError(f"{path}: span end {end} s is not after start {start} s")
    if max_seconds is not None:
        duration = audio_duration(path)
        if duration is not None and duration > max_seconds:
            raise AudioError(
                f"{path}: {duration:.0f} s long, over the {max_seconds:.0f} s limit; "
                "cut it into shorter clips or raise the limit"
            )
    try:
        if path.suffix.lower() in SOUNDFILE_SUFFIXES:
            try:
                data, sr = _decode_soundfile(path, start, end)
            except (RuntimeError, OSError) as sf_error:  # libsndfile cannot read it: try FFmpeg
                try:
                    data, sr = _decode_av(path, start, end)
                except Exception:
                    raise sf_error from None
        else:
            data, sr = _decode_av(path, start, end)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(
            f"{path}: cannot decode audio ({type(exc).__name__}: {exc}); the file may be corrupt "
            "or in an unsupported format: re-encode it (e.g. to 16-bit WAV or FLAC)"
        ) from exc
    wave = downmix(data)
    if wave.size == 0:
        span = "" if start is None and end is None else f" in span [{start}, {end}] s"
        raise AudioError(f"{path}: no audio samples{span}; check the file or the span")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: the audio holds NaN/inf samples; re-encode the file")
    if not np.any(wave):
        raise AudioError(
            f"{path}: the audio is entirely silent (all samples are zero); "
            "remove the clip or check the recording"
        )
    if sample_rate is not None and sample_rate != sr:
        wave = resample(wave, sr, sample_rate)
        sr = sample_rate
    return wave, sr


def audio_duration(path: str | Path) -> float | None:
    """Duration in seconds from the file header, or None when the header does not say."""
    path = Path(path)
    try:
        if path.suffix.lower() in SOUNDFILE_SUFFIXES:
            import soundfile as sf

            info = sf.info(str(path))
            return info.frames / info.samplerate
        import av

        with av.open(str(path)) as c:
            if c.duration is not None:
                return c.duration / 1_000_000
    except Exception:  # header unreadable: decoding will report the real error
        return None
    return None


@dataclass(frozen=True)
class ClipPolicy:
    """Deterministic handling of short and long clips (recorded in every run manifest).

    Args:
        min_seconds: Shorter clips are zero-padded at the end to this length.
        max_seconds: Longer clips are windowed or cropped (None: no limit).
        long: ``"window"`` — split into ``max_seconds`` windows with hop ``hop_fraction ×
            max_seconds`` (the last window ends at the clip's end), embed each and average;
            ``"centre"`` — keep the central ``max_seconds``.
        hop_fraction: Window hop as a fraction of ``max_seconds``.
    """

    min_seconds: float = 0.0
    max_seconds: float | None = None
    long: str = "window"
    hop_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.long not in ("window", "centre"):
            raise ValueError(f"ClipPolicy.long must be 'window' or 'centre', not {self.long!r}")

    def windows(self, wave: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        """Split one mono waveform into the segments an encoder embeds (then averages)."""
        wave = np.asarray(wave, dtype=np.float32)
        min_len = round(self.min_seconds * sample_rate)
        if len(wave) < min_len:
            wave = np.pad(wave, (0, min_len - len(wave)))
        if self.max_seconds is None:
            return [wave]
        size = round(self.max_seconds * sample_rate)
        if len(wave) <= size:
            return [wave]
        if self.long == "centre":
            lo = (len(wave) - size) // 2
            return [wave[lo : lo + size]]
        hop = max(1, round(size * self.hop_fraction))
        starts = list(range(0, len(wave) - size + 1, hop))
        if starts[-1] != len(wave) - size:
            starts.append(len(wave) - size)
        return [wave[s : s + size] for s in starts]

    def describe(self) -> dict:
        return asdict(self)
