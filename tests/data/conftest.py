"""Shared fixtures for the data tests: the real data folder and media-file writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "kitchen20" / "labels.csv").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def tone_signal(freqs, sample_rate: int, seconds_each: float = 1.0) -> np.ndarray:
    """Concatenated 0.5-amplitude sine tones, one per entry of ``freqs``."""
    n = round(seconds_each * sample_rate)
    t = np.arange(n) / sample_rate
    return np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


def write_av(
    path: Path,
    signal: np.ndarray,
    sample_rate: int,
    *,
    codec: str = "aac",
    container: str | None = None,
    video: bool = False,
    channels: int = 2,
) -> Path:
    """Encode mono ``signal`` (copied to ``channels``) with PyAV, optionally with a video track."""
    import av

    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format=container) as out:
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream(codec, rate=sample_rate)
        astream.layout = layout
        planar = astream.format.is_planar
        step = 1024
        for i in range(0, len(signal), step):
            chunk = signal[i : i + step]
            arr = np.tile(chunk, (channels, 1)) if planar else np.repeat(chunk, channels)[None]
            if astream.format.name.startswith("s16"):
                arr = (arr * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(arr), format=astream.format.name, layout=layout
            )
            frame.sample_rate, frame.pts = sample_rate, i
            for packet in astream.encode(frame):
                out.mux(packet)
            if vstream is not None and i % (sample_rate // 10) < step:
                image = np.full((48, 64, 3), (i // step) % 255, np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
        for stream in (astream, vstream):
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
    return path


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sample_rate)[np.argmax(spectrum)])


@pytest.fixture(scope="session")
def tones_mp4(tmp_path_factory) -> tuple[Path, list[int], int]:
    """A 6 s MP4 (AAC stereo audio + MPEG-4 video): second k holds a tone of 300 + 200k Hz."""
    freqs = [300, 500, 700, 900, 1100, 1300]
    sample_rate = 48000
    path = tmp_path_factory.mktemp("media") / "P01_01.mp4"
    write_av(path, tone_signal(freqs, sample_rate), sample_rate, container="mp4", video=True)
    return path, freqs, sample_rate
