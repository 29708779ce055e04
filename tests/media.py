"""Small video files written with PyAV for tests, with frames that say which frame they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Grey levels that survive lossy coding: a half-frame of level ``BASE + STEP·d`` encodes digit d.
BASE, STEP = 10, 24


def index_frame(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """An RGB frame showing ``i`` (0–99): tens on the left half, units on the right, in grey."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[:, : width // 2] = BASE + STEP * (i // 10)
    frame[:, width // 2 :] = BASE + STEP * (i % 10)
    return frame


def frame_index(frame: np.ndarray) -> int:
    """Read back the number drawn by :func:`index_frame` (centres of both halves)."""
    h, w = frame.shape[:2]
    left = frame[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean()
    right = frame[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean()
    return 10 * round((left - BASE) / STEP) + round((right - BASE) / STEP)


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: int = 10,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    audio_hz: float | None = None,
    audio_codec: str = "aac",
    sample_rate: int = 48000,
    container: str | None = None,
) -> Path:
    """Encode RGB ``frames`` at ``fps`` (yuv420p); with ``audio_hz``, add a stereo sine tone of
    that frequency as long as the video."""
    import av

    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream(codec, rate=fps, options=options or {})
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        audio = None
        if audio_hz is not None:
            audio = out.add_stream(audio_codec, rate=sample_rate)
            audio.layout = "stereo"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            n = round(len(frames) / fps * sample_rate)
            tone = (0.5 * np.sin(2 * np.pi * audio_hz * np.arange(n) / sample_rate)).astype(
                np.float32
            )
            step = 960
            for start in range(0, n, step):
                chunk = tone[start : start + step]
                arr = (
                    np.tile(chunk, (2, 1)) if audio.format.is_planar else np.repeat(chunk, 2)[None]
                )
                if audio.format.name.startswith("s16"):
                    arr = (arr * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(arr), format=audio.format.name, layout="stereo"
                )
                af.sample_rate, af.pts = sample_rate, start
                for packet in audio.encode(af):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def solid_video(path: Path, rgb: tuple[int, int, int], n: int = 10, **kwargs) -> Path:
    """A video of ``n`` frames of one colour (64 × 48)."""
    frame = np.empty((48, 64, 3), np.uint8)
    frame[:] = rgb
    return write_video(path, [frame] * n, **kwargs)
