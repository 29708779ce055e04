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
        first = 0 if start is None else max(0, int(round(start * sr)))
        last = f.frames if end is None else min(f.frames, int(round(end * sr)))
        f.seek(min(first, f.frames))
        data = f.read(max(0, last - first), dtype="float32", always_2d=True)
    return data, sr


def _decode_av(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError(f"{path}: the file has no audio track")
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.rate
        if start:
            container.seek(int(start / stream.time_base), stream=stream, any_frame=False,
                           backward=True)
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            if arr.dtype.kind == "i":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
            arr = arr.astype(np.float32)
            channels = len(frame.layout.channels)
            if frame.format.is_planar:
                arr = arr.reshape(channels, -1).T
            else:
                arr = arr.reshape(-1, channels)
            if first_t is None:
                first_t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            chunks.append(arr)
            if end is not None and frame.pts is not None and frame.pts * frame.time_base > end:
                break
    if not chunks:
        return np.zeros((0, 1), np.float32), sr
    data = np.concatenate(chunks)
    offset = first_t or 0.0
    lo = 0 if start is None else max(0, int(round((start - offset) * sr)))
    hi = len(data) if end is None else max(lo, int(round((end - offset) * sr)))
    return data[lo:hi], sr


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
        min_len = int(round(self.min_seconds * sample_rate))
        if len(wave) < min_len:
            wave = np.pad(wave, (0, min_len - len(wave)))
        if self.max_seconds is None:
            return [wave]
        size = int(round(self.max_seconds * sample_rate))
        if len(wave) <= size:
            return [wave]
        if self.long == "centre":
            lo = (len(wave) - size) // 2
            return [wave[lo : lo + size]]
        hop = max(1, int(round(size * self.hop_fraction)))
        starts = list(range(0, len(wave) - size + 1, hop))
        if starts[-1] != len(wave) - size:
            starts.append(len(wave) - size)
        return [wave[s : s + size] for s in starts]

    def describe(self) -> dict:
        return asdict(self)
