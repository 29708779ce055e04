"""Video frame decoding with PyAV/FFmpeg: the middle frame, or ``k`` evenly spaced frames, as RGB.

ClipClap (Kurzendörfer et al., 2024) passes "the middle frame" of a clip through its image
encoder; :func:`read_frames` returns exactly that frame, or ``k`` frames for a mean over time.

**Which frames.** A frame is *on screen* from its presentation timestamp (pts) until the next
frame's. The clip spans ``[t_first, t_end)``, from the first frame's pts to the end of the last
frame (its pts plus its duration), or the ``[start, end)`` span asked for. It is cut into ``k``
equal segments and the frame on screen at the centre of each segment is returned:
``τ_j = t_first + (j + ½)·(t_end − t_first)/k``, frame = the last one with ``pts ≤ τ_j``.
With ``k = 1`` that is the frame on screen at the middle of the clip (for a constant frame rate
and ``F`` frames, frame ``⌊F/2⌋``, counting from 0). Frames are chosen by time, so a variable
frame rate is handled; ``k`` larger than the number of frames repeats frames.

**How, exactly and deterministically.** The timeline comes from the container's packets
(demuxed, not decoded: cheap), never from header metadata, which can be wrong. Decoding then
seeks to the keyframe at or before ``τ_0`` and decodes forward, picking frames by their decoded
pts; should a seek land after ``τ_0`` (an index that lies), the file is decoded again from the
start without seeking. The same file therefore always gives the same frames. Streams without
timestamps (raw elementary streams) fall back to frame counts: two decoding passes, frame
``⌊(j + ½)·F/k⌋``. With a ``[start, end)`` span the packet scan is skipped (hour-long
recordings are not read to their end): times are seconds from the first frame of the video
stream, as :class:`harken.data.audio.AvReader` counts from the start of the audio stream.

Frames are converted with ``frame.to_ndarray(format="rgb24")``: ``uint8 [H, W, 3]`` in **RGB**
order (never BGR). Rotation metadata (phone videos) is not applied. The audio track of a video
goes through :func:`harken.data.audio.load_audio` (PyAV, mean downmix, soxr resampling).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harken.errors import VideoError

_REENCODE = "re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or remove the clip"


def read_frames(
    path: str | Path,
    n_frames: int = 1,
    *,
    start: float | None = None,
    end: float | None = None,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Decode the middle frame (``n_frames=1``) or ``n_frames`` evenly spaced frames of a video.

    Args:
        path: Video file (any container FFmpeg reads: mp4, mkv, webm, avi, ...; a still image
            such as a JPEG reads as a one-frame video).
        n_frames: How many frames: the centres of ``n_frames`` equal segments of the clip.
        start: Span start in seconds from the first video frame (None: the first frame).
        end: Span end in seconds (None: the end of the video).
        max_bytes: Refuse files larger than this (oversized uploads) without decoding them.

    Returns:
        ``uint8 [n_frames, H, W, 3]``, RGB, in time order.

    Raises:
        VideoError: missing, empty, oversized, unreadable or corrupt file; no video track; no
            frames (in the span); frames of different sizes. The message names the file and
            what to do.
        ValueError: ``n_frames < 1``, ``start < 0`` or ``end <= start``.
    """
    import av

    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, not {n_frames}")
    if start is not None and start < 0:
        raise ValueError(f"span start must be at least 0 s, not {start}")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"span end {end} s is not after start {start} s")
    path = _check_file(Path(path), max_bytes)
    try:
        frames = _read(path, n_frames, start, end)
    except VideoError:
        raise
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"{path}: cannot decode video ({type(exc).__name__}: {exc}); the file is not a "
            f"video container FFmpeg can read, or it is corrupt: {_REENCODE}"
        ) from exc
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise VideoError(
            f"{path}: the chosen frames have different sizes {sorted(shapes)} (the resolution "
            f"changes mid-stream); {_REENCODE}"
        )
    return np.stack(frames)


def _check_file(path: Path, max_bytes: int | None) -> Path:
    if not path.exists():
        raise VideoError(f"{path}: file not found (check the path, or the dataset's --data-dir)")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, expected a video file")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes); re-download or remove it")
    if max_bytes is not None and size > max_bytes:
        raise VideoError(
            f"{path}: {_bytes(size)}, over the {_bytes(max_bytes)} limit; "
            "cut or downscale the video, or raise the limit"
        )
    return path


def _bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _open_video(path: Path):
    """``(container, first video stream)``; raises VideoError when there is no video track."""
    import av

    container = av.open(str(path))
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise VideoError(
            f"{path}: the file has no video track (it holds: {', '.join(kinds)}); pass a video "
            "file, or read an audio-only file with harken.data.audio.load_audio"
        )
    return container, container.streams.video[0]


def _read(path: Path, k: int, start: float | None, end: float | None) -> list[np.ndarray]:
    container, stream = _open_video(path)
    with container:
        origin = stream.start_time
        timeline = None if end is not None else _packet_timeline(container, stream)
        time_base = stream.time_base
    if end is None and timeline is None:  # no timestamps: count frames instead
        if start is not None:
            raise VideoError(
                f"{path}: the video stream has no timestamps, so a time span cannot be cut "
                f"from it; {_REENCODE}"
            )
        return _read_by_index(path, k)
    if timeline is not None:
        first, hi = timeline
        origin = first if origin is None else origin
        lo = first if start is None else origin + start / time_base
        if hi <= lo:
            raise VideoError(
                f"{path}: span start {start} s is at or after the end of the video "
                f"({float((hi - origin) * time_base):.2f} s); check the span"
            )
    else:
        origin = origin or 0
        lo, hi = origin + (start or 0.0) / time_base, origin + end / time_base
    targets = [float(lo + (j + 0.5) * (hi - lo) / k) for j in range(k)]
    span = end is not None
    frames = _decode_at(path, targets, seek=True, span=span)
    if frames is None:  # the seek landed after the first target: decode from the start
        frames = _decode_at(path, targets, seek=False, span=span)
    if not frames:
        raise VideoError(f"{path}: no video frame could be decoded; {_REENCODE}")
    return frames


def _packet_timeline(container, stream) -> tuple[float, float] | None:
    """``(first pts, end pts)`` of the video stream from its packets, in ``time_base`` units.

    The end is the last packet's pts plus its duration (or plus the median frame interval when
    packets carry no duration). Returns None when no packet carries a timestamp.

    Raises:
        VideoError: the video stream holds no packets (zero frames).
    """
    pts: list[int] = []
    durations: list[int] = []
    count = 0
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's final flush packet
            continue
        count += 1
        if packet.pts is not None:
            pts.append(packet.pts)
            durations.append(packet.duration or 0)
    if count == 0:
        raise VideoError(
            f"{container.name}: the video track holds no frames (zero frames); "
            "re-export the video or remove the clip"
        )
    if not pts:
        return None
    order = np.argsort(pts, kind="stable")
    sorted_pts = np.asarray(pts, np.float64)[order]
    last_duration = float(durations[int(order[-1])])
    if last_duration <= 0:
        gaps = np.diff(sorted_pts)
        last_duration = float(np.median(gaps)) if gaps.size else 0.0
    return float(sorted_pts[0]), float(sorted_pts[-1] + last_duration)


def _decode_at(
    path: Path, targets: list[float], *, seek: bool, span: bool
) -> list[np.ndarray] | None:
    """RGB frames on screen at each target time: the last frame with ``pts <= target``.

    Args:
        path: The video.
        targets: Ascending times in the video stream's ``time_base``.
        seek: Seek to the keyframe at or before ``targets[0]`` first; None is returned when the
            first decoded frame is already after ``targets[0]``, or when nothing decodes after
            the seek (an inaccurate or unsupported seek, e.g. in a single JPEG).
            Without seeking, targets before the first frame get the first frame.
        span: The targets come from a user's span, which may run past the end of the video
            (an error); otherwise they lie inside the packet timeline and the last frame
            covers any target after it.

    Raises:
        VideoError: a span target lies after the end of the last frame; decoded frames carry
            no timestamps.
    """
    container, stream = _open_video(path)
    with container:
        if seek:
            container.seek(math.floor(targets[0]), stream=stream, backward=True, any_frame=False)
        out: list[np.ndarray] = []
        prev = None
        converted: tuple = (None, None)  # (frame, its RGB array): a frame picked twice
        for frame in container.decode(stream):
            if frame.pts is None:
                raise VideoError(f"{path}: decoded video frames carry no timestamps; {_REENCODE}")
            while len(out) < len(targets) and frame.pts > targets[len(out)]:
                if prev is None and seek:
                    return None
                pick = prev if prev is not None else frame
                if converted[0] is not pick:
                    converted = (pick, pick.to_ndarray(format="rgb24"))
                out.append(converted[1])
            if len(out) == len(targets):
                return out
            prev = frame
        if prev is None:  # nothing decoded: after a seek, retry from the start
            return None if seek else out
        last_end = prev.pts + _frame_duration(prev, stream)
        if span and targets[-1] >= last_end:
            origin = stream.start_time or 0
            raise VideoError(
                f"{path}: the span runs past the end of the video (its last frame ends at "
                f"{float((last_end - origin) * stream.time_base):.2f} s); check the span"
            )
        last = prev.to_ndarray(format="rgb24") if converted[0] is not prev else converted[1]
        return out + [last] * (len(targets) - len(out))


def _frame_duration(frame, stream) -> float:
    """A frame's duration in ``time_base`` units: its own, else one over the average rate."""
    duration = getattr(frame, "duration", None)  # VideoFrame.duration: PyAV >= 13
    if duration:
        return float(duration)
    if stream.average_rate:
        return float(1 / (stream.average_rate * stream.time_base))
    return 0.0


def _count_frames(path: Path) -> int:
    container, stream = _open_video(path)
    with container:
        return sum(1 for _ in container.decode(stream))


def _read_by_index(path: Path, k: int) -> list[np.ndarray]:
    """Fallback for streams without timestamps: frame ``⌊(j + ½)·F/k⌋`` of ``F`` decoded frames."""
    total = _count_frames(path)
    if total == 0:
        raise VideoError(f"{path}: no video frame could be decoded; {_REENCODE}")
    wanted = [min(total - 1, math.floor((j + 0.5) * total / k)) for j in range(k)]
    container, stream = _open_video(path)
    found: dict[int, np.ndarray] = {}
    with container:
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                found[index] = frame.to_ndarray(format="rgb24")
            if index >= wanted[-1]:
                break
    return [found[i] for i in wanted]
