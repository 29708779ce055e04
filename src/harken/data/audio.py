"""Audio decoding, explicit mono downmix, high-quality resampling and the clip-length policy.

Every encoder receives mono float32 waveforms at its own sample rate, produced here:

* **decode**: soundfile (wav/flac/ogg/mp3), PyAV/FFmpeg for anything else (the audio track of
  mp4/mkv/webm, m4a, ...); an optional ``[start, end)`` span in seconds.
* **downmix**: the mean of the channels (never a concatenation of channels).
* **resample**: soxr, "VHQ" quality.
* **streaming** (:func:`stream_audio`): the same decode, downmix and resampling in blocks of
  :data:`STREAM_BLOCK_SECONDS`, so that memory does not grow with the clip's length; soxr's
  streaming resampler gives the same samples as the one-shot one.
* **warnings** (:class:`~harken.errors.UnreliableAudioWarning`): clips shorter than
  :data:`MIN_RELIABLE_SECONDS` or whose peak is below :data:`QUIET_PEAK_DBFS` are still decoded,
  but their embeddings say little about a sound; a warning names the file.
* **clip policy** (:class:`ClipPolicy`): clips shorter than ``min_seconds`` are zero-padded at
  the end; clips longer than ``max_seconds`` are either split into windows whose embeddings are
  averaged (``long="window"``, the default: nothing of the clip is thrown away) or centre-cropped
  (``long="centre"``). No randomness anywhere: the same file always gives the same samples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harken.errors import AudioError, UnreliableAudioWarning

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}

STREAM_BLOCK_SECONDS = 30.0
"""Seconds of native-rate audio :func:`stream_audio` decodes at a time (its memory is ∝ this)."""

MIN_RELIABLE_SECONDS = 0.1
"""Clips shorter than this are embedded (zero- or repeat-padded by the encoder) with a warning:
the padding, not the sound, dominates their embedding."""

QUIET_PEAK_DBFS = -60.0
"""Clips whose peak sample is below this level (dB relative to full scale, ``20·log10 |x|``) are
embedded with a warning: what the encoder hears is mostly noise floor."""


def _check_source(path: str | Path, start: float | None = None, end: float | None = None) -> Path:
    """The checks every reader makes before decoding: the file exists, is a non-empty file and
    the span is ordered."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found (check the path, or the dataset's --data-dir)")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    if start is not None and end is not None and end <= start:
        raise AudioError(f"{path}: span end {end} s is not after start {start} s")
    if path.suffix.lower() == ".wav":
        _check_wav_complete(path)
    return path


_WAV_SIZE_UNKNOWN = (0, 0xFFFFFFFF)  # streaming writers / RF64 leave the size open


def _check_wav_complete(path: Path) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk promises more bytes than the file holds.

    libsndfile decodes such a file silently up to where it ends, so an interrupted copy or
    download would be embedded as a shorter clip with no word said. Files that are not
    RIFF/WAVE (soundfile or FFmpeg then decides), and sizes left open by streaming writers
    (0 or 0xFFFFFFFF), pass.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                if chunk_size in _WAV_SIZE_UNKNOWN:
                    return
                missing = offset + 8 + chunk_size - size
                if missing > 0:
                    raise AudioError(
                        f"{path}: truncated WAV file: its header promises {chunk_size} bytes of "
                        f"audio but the file ends {missing} bytes short (an interrupted copy or "
                        "download?); copy or export the file again"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def _decode_error(path: Path, exc: Exception) -> AudioError:
    return AudioError(
        f"{path}: cannot decode audio ({type(exc).__name__}: {exc}); the file may be corrupt "
        "or in an unsupported format: re-encode it (e.g. to 16-bit WAV or FLAC)"
    )


def _no_samples_error(path: Path, start: float | None, end: float | None) -> AudioError:
    span = "" if start is None and end is None else f" in span [{start}, {end}] s"
    return AudioError(f"{path}: no audio samples{span}; check the file or the span")


def _non_finite_error(path: Path) -> AudioError:
    return AudioError(f"{path}: the audio holds NaN/inf samples; re-encode the file")


def _silent_error(path: Path) -> AudioError:
    return AudioError(
        f"{path}: the audio is entirely silent (all samples are zero); "
        "remove the clip or check the recording"
    )


def warn_if_unreliable(path: str | Path, seconds: float, peak: float) -> None:
    """Warn (:class:`~harken.errors.UnreliableAudioWarning`) about a clip too short or too quiet
    for its embedding to mean much.

    Args:
        path: The file (named in the message).
        seconds: Decoded length of the clip (or span).
        peak: Largest absolute sample of its mono downmix (1.0 = full scale).
    """
    if seconds < MIN_RELIABLE_SECONDS:
        warnings.warn(
            f"{path}: only {seconds * 1000:.1f} ms of audio (under {MIN_RELIABLE_SECONDS} s); "
            "it is embedded, but padding dominates its embedding, so its ranking is "
            "unreliable: use a longer clip or span",
            UnreliableAudioWarning,
            stacklevel=3,
        )
    if peak < 10.0 ** (QUIET_PEAK_DBFS / 20.0):
        level = 20.0 * math.log10(peak) if peak > 0 else float("-inf")
        warnings.warn(
            f"{path}: near-silent (peak {level:.0f} dBFS, below {QUIET_PEAK_DBFS:.0f} dBFS); "
            "it is embedded, but its embedding reflects the noise floor rather than a sound, so "
            "its ranking is unreliable: check the recording level or remove the clip",
            UnreliableAudioWarning,
            stacklevel=3,
        )


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
        self._buf_t0 = float("nan")  # stream time of the first buffered sample (nan: none yet)
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
        first = math.isnan(self._buf_t0)  # the first frame since the last (re)start
        if frame.sample_rate and frame.sample_rate != self.sample_rate and first:
            self.sample_rate = frame.sample_rate  # e.g. HE-AAC: the header gives half the rate
        t = float(frame.pts * frame.time_base) - self._offset if frame.pts is not None else None
        if first:
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

    def blocks(
        self, start: float | None = None, end: float | None = None, block_samples: int = 1 << 20
    ) -> Iterator[np.ndarray]:
        """Decode ``[start, end)`` seconds as consecutive blocks of ``block_samples`` frames.

        The concatenated blocks equal ``read(start, end)`` sample for sample (the same seek,
        start sample and end sample), but at most about one block is held at a time.

        Yields:
            float32 ``[samples, channels]`` at :attr:`sample_rate` (the last block shorter).
        """
        start = 0.0 if start is None else max(0.0, start)
        self._restart(start)
        while math.isnan(self._buf_t0) and not self._eof:
            self._pull()
        if math.isnan(self._buf_t0):
            return
        rate = self.sample_rate
        skip = max(0, round((start - self._buf_t0) * rate))
        left = None if end is None else max(0, round((end - self._buf_t0) * rate) - skip)
        while left is None or left > 0:
            want = block_samples if left is None else min(block_samples, left)
            while not self._eof and self._buf_len < skip + want:
                self._pull()
            data = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
            out = data[skip : skip + want]
            used = min(len(data), skip + want)
            self._chunks, self._buf_len = [data[used:].copy()], len(data) - used
            self._buf_t0 += used / self.sample_rate
            skip = 0
            if left is not None:
                left -= len(out)
            if len(out):
                yield out
            if self._eof and self._buf_len == 0:
                return


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
    """Decode ``path`` to a mono float32 waveform, all of it in memory.

    Long recordings are better read with :func:`stream_audio` (same samples, bounded memory).
    A clip shorter than :data:`MIN_RELIABLE_SECONDS` or quieter than :data:`QUIET_PEAK_DBFS`
    is returned with an :class:`~harken.errors.UnreliableAudioWarning`.

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
    path = _check_source(path, start, end)
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
        raise _decode_error(path, exc) from exc
    wave = downmix(data)
    if wave.size == 0:
        raise _no_samples_error(path, start, end)
    if not np.all(np.isfinite(wave)):
        raise _non_finite_error(path)
    if not np.any(wave):
        raise _silent_error(path)
    warn_if_unreliable(path, wave.size / sr, float(np.max(np.abs(wave))))
    if sample_rate is not None and sample_rate != sr:
        wave = resample(wave, sr, sample_rate)
        sr = sample_rate
    return wave, sr


def _soundfile_blocks(
    f, start: float | None, end: float | None, block: int
) -> Iterator[np.ndarray]:
    """Blocks of an open ``soundfile.SoundFile`` over the span (as :func:`_decode_soundfile`)."""
    sr = f.samplerate
    first = 0 if start is None else max(0, round(start * sr))
    last = f.frames if end is None else min(f.frames, round(end * sr))
    f.seek(min(first, f.frames))
    left = max(0, last - first)
    while left > 0:
        data = f.read(min(block, left), dtype="float32", always_2d=True)
        if len(data) == 0:
            return
        left -= len(data)
        yield data


def _native_blocks(
    path: Path, start: float | None, end: float | None, block_seconds: float
) -> Iterator[tuple[np.ndarray, int]]:
    """``(float32 [samples, channels], native rate)`` blocks of the span, soundfile first and
    PyAV/FFmpeg when libsndfile cannot open the file (as :func:`load_audio` decodes)."""
    f = None
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            f = sf.SoundFile(str(path))
        except (RuntimeError, OSError) as sf_error:  # libsndfile cannot read it: try FFmpeg
            try:
                reader = AvReader(path)
            except Exception:
                raise sf_error from None
            with reader:
                block = max(1, round(block_seconds * reader.sample_rate))
                for data in reader.blocks(start, end, block):
                    yield data, reader.sample_rate
            return
    if f is not None:
        with f:
            block = max(1, round(block_seconds * f.samplerate))
            for data in _soundfile_blocks(f, start, end, block):
                yield data, f.samplerate
        return
    with AvReader(path) as reader:
        block = max(1, round(block_seconds * reader.sample_rate))
        for data in reader.blocks(start, end, block):
            yield data, reader.sample_rate


def stream_audio(
    path: str | Path,
    sample_rate: int | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
    block_seconds: float = STREAM_BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Decode ``path`` as consecutive mono float32 blocks, holding about one block at a time.

    The concatenated blocks equal ``load_audio(path, sample_rate, start=start, end=end)[0]``
    (same decode, downmix and soxr "VHQ" resampling, run as a stream), and the same checks
    apply: a file whose blocks hold a NaN/inf raises as soon as that block is read; an empty
    span or a file whose blocks are all zero ("entirely silent") raises after the last block;
    a tiny or near-silent clip warns after the last block.

    Args:
        path: Audio or video file.
        sample_rate: Resample to this rate; None keeps the file's rate.
        start: Span start in seconds (None = beginning).
        end: Span end in seconds (None = end of file).
        block_seconds: Native-rate seconds decoded per block.

    Yields:
        float32 ``[n]`` blocks (sizes vary with resampling; possibly a short last one).

    Raises:
        AudioError: as :func:`load_audio`, naming the file.
    """
    path = _check_source(path, start, end)
    n, peak, rate, stream = 0, 0.0, None, None
    try:
        for data, rate in _native_blocks(path, start, end, block_seconds):
            wave = downmix(data)
            if not np.all(np.isfinite(wave)):
                raise _non_finite_error(path)
            if wave.size == 0:
                continue
            n += wave.size
            peak = max(peak, float(np.max(np.abs(wave))))
            if sample_rate is None or sample_rate == rate:
                yield wave
                continue
            if stream is None:
                import soxr

                stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="VHQ")
            out = stream.resample_chunk(wave)
            if len(out):
                yield out
    except AudioError:
        raise
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail
    if n == 0:
        raise _no_samples_error(path, start, end)
    if peak == 0.0:
        raise _silent_error(path)
    warn_if_unreliable(path, n / rate, peak)


def audio_duration(path: str | Path) -> float | None:
    """Duration in seconds from the file header.

    Returns:
        The duration, or None only when the container genuinely does not state one (some
        streams, e.g. raw ADTS or live-recorded WebM); never None because of an error.

    Raises:
        AudioError: the file is missing, empty or not a readable audio/video file, or has no
            audio track (the message names the file).
    """
    path = _check_source(path)
    sf_error: Exception | None = None
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            info = sf.info(str(path))
            return info.frames / info.samplerate
        except (RuntimeError, OSError) as exc:  # libsndfile cannot read it: try FFmpeg
            sf_error = exc
    try:
        return _av_duration(path)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(
            f"{path}: cannot decode audio (unreadable header: {type(sf_error or exc).__name__}: "
            f"{sf_error or exc}); the file may be corrupt or in an unsupported format: "
            "re-encode it (e.g. to 16-bit WAV or FLAC)"
        ) from exc


def _av_duration(path: Path) -> float | None:
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise AudioError(f"{path}: the file has no audio track")
        stream = c.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if c.duration is not None:
            return c.duration / 1_000_000
    return None


def span_duration(path: str | Path, start: float | None = None, end: float | None = None):
    """Seconds of ``[start, end)`` that lie inside the file, from its header (None: unknown).

    Raises:
        AudioError: as :func:`audio_duration`.
    """
    total = audio_duration(path)
    if total is None:
        return None
    lo = 0.0 if start is None else max(0.0, start)
    hi = total if end is None else min(total, end)
    return max(0.0, hi - lo)


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

    def streams(self, sample_rate: float) -> bool:
        """Whether :meth:`stream_windows` can cut windows without holding the whole clip
        (``long="window"`` with a ``max_seconds`` at least ``min_seconds``)."""
        if self.max_seconds is None or self.long != "window":
            return False
        return round(self.min_seconds * sample_rate) <= round(self.max_seconds * sample_rate)

    def stream_windows(
        self, blocks: Iterable[np.ndarray], sample_rate: float
    ) -> Iterator[np.ndarray]:
        """The windows of :meth:`windows` over the concatenation of ``blocks``, in order.

        With a streaming policy (:meth:`streams`) at most one window plus one block is held:
        windows are cut as soon as their samples have arrived, and the final window aligned to
        the clip's end comes from the retained tail. Otherwise (no ``max_seconds``, centre crop)
        the whole clip is collected first. Blocks are arrays along axis 0 (samples, or frames
        ``[n, features]``); frame arrays are zero-padded as :meth:`windows` pads samples.

        Args:
            blocks: Consecutive pieces of one clip.
            sample_rate: Items of axis 0 per second.

        Yields:
            Windows (copies), the same as ``windows(np.concatenate(blocks), sample_rate)``.
        """
        if not self.streams(sample_rate):
            yield from self._whole_windows(list(blocks), sample_rate)
            return
        size = round(self.max_seconds * sample_rate)
        hop = max(1, round(size * self.hop_fraction))
        held: list[np.ndarray] = []
        buf, base, total, next_start, last_start = None, 0, 0, 0, None
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            total += len(block)
            if buf is None and total <= size:  # short so far: keep everything
                held.append(block)
                continue
            parts = ([] if buf is None else [buf]) + held + [block]
            held = []
            buf = np.concatenate(parts) if len(parts) > 1 else block
            while next_start + size <= total:
                lo = next_start - base
                yield buf[lo : lo + size].copy()
                last_start, next_start = next_start, next_start + hop
            keep = max(base, min(next_start, total - size))
            buf, base = buf[keep - base :].copy(), keep
        if buf is None:  # never longer than one window: the in-memory rules apply
            yield from self._whole_windows(held, sample_rate)
        elif last_start != total - size:
            yield buf[total - size - base :].copy()

    def _whole_windows(self, blocks: list[np.ndarray], sample_rate: float) -> list[np.ndarray]:
        if not blocks:
            return self.windows(np.zeros(0, np.float32), sample_rate)
        wave = np.concatenate([np.asarray(b, dtype=np.float32) for b in blocks])
        if wave.ndim == 1:
            return self.windows(wave, sample_rate)
        index = np.arange(1, len(wave) + 1, dtype=np.float32)  # 0 marks a padded frame
        padded = np.vstack([np.zeros((1, *wave.shape[1:]), np.float32), wave])
        return [padded[w.astype(np.int64)] for w in self.windows(index, sample_rate)]

    def describe(self) -> dict:
        return asdict(self)
