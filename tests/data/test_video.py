"""read_frames on real containers written with PyAV: which frames, RGB order, spans, errors.

Frame ``i`` of each test video shows the number ``i`` (:func:`media.index_frame`), so the
tests check exactly which frames were returned.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import sklearn.datasets

from harken.data import video
from harken.data.audio import load_audio
from harken.data.video import read_frames
from harken.errors import DataError, VideoError
from media import frame_index, index_frame, solid_video, write_video

from .conftest import dominant_frequency, tone_signal, write_av

# (suffix, video codec, audio codec): mp4/H.264 with B-frames, webm/VP9 + Opus, mkv and avi
# with MPEG-4 Part 2.
CONTAINERS = [
    (".mp4", "libx264", "aac"),
    (".webm", "libvpx-vp9", "libopus"),
    (".mkv", "mpeg4", "aac"),
    (".avi", "mpeg4", None),
]


def _need(*codecs: str | None) -> None:
    for codec in codecs:
        if codec is not None and codec not in av.codecs_available:
            pytest.skip(f"this FFmpeg build cannot encode {codec}")


def indices(frames: np.ndarray) -> list[int]:
    return [frame_index(f) for f in frames]


def expected(n_total: int, k: int) -> list[int]:
    """Constant frame rate: the frame on screen at the centre of segment j is ⌊(j + ½)·F/k⌋."""
    return [math.floor((j + 0.5) * n_total / k) for j in range(k)]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video")


@pytest.fixture(scope="module", params=CONTAINERS, ids=[c[0] for c in CONTAINERS])
def eleven_frames(request, media_dir) -> Path:
    """11 frames at 10 fps (1.1 s), frame i showing i, with a 440 Hz stereo track if any."""
    suffix, vcodec, acodec = request.param
    _need(vcodec, acodec)
    frames = [index_frame(i) for i in range(11)]
    path = media_dir / f"eleven{suffix}"
    return write_video(
        path, frames, codec=vcodec, audio_hz=440 if acodec else None, audio_codec=acodec or "aac"
    )


@pytest.fixture(scope="module")
def long_mp4(media_dir) -> Path:
    """101 frames at 25 fps (4.04 s), H.264 with a keyframe every 10 frames and B-frames: the
    decoder has to seek."""
    _need("libx264")
    frames = [index_frame(i) for i in range(101)]
    return write_video(
        media_dir / "long.mp4", frames, fps=25, codec="libx264", options={"g": "10", "bf": "2"}
    )


def test_middle_frame_and_k_frames(eleven_frames):
    middle = read_frames(eleven_frames)
    assert middle.shape == (1, 48, 64, 3) and middle.dtype == np.uint8
    assert indices(middle) == [5]  # 11 frames: the middle one
    for k in (2, 3, 4, 11):
        frames = read_frames(eleven_frames, k)
        assert frames.shape == (k, 48, 64, 3)
        assert indices(frames) == expected(11, k), k
    # more frames than the video holds: frames repeat, still in time order
    assert indices(read_frames(eleven_frames, 13)) == expected(11, 13)


def test_even_frame_count_takes_the_frame_on_screen_at_the_middle(media_dir):
    _need("libx264")
    path = write_video(media_dir / "ten.mp4", [index_frame(i) for i in range(10)])
    # 10 frames over 1 s: at 0.5 s frame 5 is on screen (frame 4 ends at 0.5 s)
    assert indices(read_frames(path)) == [5]


def test_seeking_long_video_matches_decoding_from_the_start(long_mp4):
    for k in (1, 4, 7):
        assert indices(read_frames(long_mp4, k)) == expected(101, k), k
    container, stream = video._open_video(long_mp4)
    with container:
        first, end = video._packet_timeline(container, stream)
        time_base = stream.time_base
    assert first == 0 and float(end * time_base) == pytest.approx(101 / 25)
    targets = [first + (j + 0.5) * (end - first) / 7 for j in range(7)]
    seeked = video._decode_at(long_mp4, targets, seek=True, span=False)
    from_start = video._decode_at(long_mp4, targets, seek=False, span=False)
    assert all(np.array_equal(a, b) for a, b in zip(seeked, from_start, strict=True))


class _LateSeek:
    """A container whose seeks land 2 s late (as with a wrong index)."""

    def __init__(self, container, stream):
        self._container, self._stream = container, stream

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()

    def seek(self, offset, **kwargs):
        late = offset + round(2 / self._stream.time_base)
        self._container.seek(late, **kwargs)


def test_a_seek_that_lands_late_falls_back_to_decoding_from_the_start(long_mp4, monkeypatch):
    open_video = video._open_video
    seeks = []

    def late_open(path):
        container, stream = open_video(path)
        seeks.append(path)
        return _LateSeek(container, stream), stream

    monkeypatch.setattr(video, "_open_video", late_open)
    assert indices(read_frames(long_mp4, 3)) == expected(101, 3)
    assert len(seeks) == 3  # packet scan, the late seek, the decode from the start


def test_deterministic(long_mp4, eleven_frames):
    for path in (long_mp4, eleven_frames):
        for k in (1, 5):
            assert np.array_equal(read_frames(path, k), read_frames(path, k))


def test_span(long_mp4):
    # [1, 2) s at 25 fps: the middle, 1.5 s, shows frame 37 (37.5 frames in)
    assert indices(read_frames(long_mp4, start=1.0, end=2.0)) == [37]
    # from 2 s to the end (4.04 s): centres at 2.51 s and 3.53 s
    assert indices(read_frames(long_mp4, 2, start=2.0)) == [62, 88]
    assert indices(read_frames(long_mp4, 2, end=2.0)) == [12, 37]
    with pytest.raises(VideoError, match=r"long\.mp4: the span runs past the end.*4\.04 s"):
        read_frames(long_mp4, start=3.5, end=5.0)
    with pytest.raises(VideoError, match=r"span start 5.0 s is at or after the end"):
        read_frames(long_mp4, start=5.0)
    with pytest.raises(ValueError, match="not after start"):
        read_frames(long_mp4, start=2.0, end=2.0)
    with pytest.raises(ValueError, match="at least 0 s"):
        read_frames(long_mp4, start=-1.0, end=2.0)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "libx264"), (".webm", "libvpx-vp9")])
def test_pure_red_decodes_as_red_rgb(media_dir, suffix, codec):
    _need(codec)
    path = solid_video(media_dir / f"red{suffix}", (255, 0, 0), codec=codec)
    frame = read_frames(path)[0].astype(int)
    red, green, blue = (frame[..., c].mean() for c in range(3))
    assert red >= 240 and green <= 15 and blue <= 15, (red, green, blue)
    blue_frame = read_frames(solid_video(media_dir / f"blue{suffix}", (0, 0, 255), codec=codec))
    assert blue_frame[0, ..., 2].mean() >= 240 and blue_frame[0, ..., 0].mean() <= 15


def test_still_image_reads_as_one_frame_video():
    """A JPEG is a one-frame video to FFmpeg (its seek fails, so the reader decodes from the
    start)."""
    jpeg = Path(sklearn.datasets.__file__).parent / "images" / "flower.jpg"
    frames = read_frames(jpeg, 2)
    assert frames.shape == (2, 427, 640, 3) and np.array_equal(frames[0], frames[1])


def test_stream_without_timestamps_falls_back_to_frame_counts(media_dir):
    _need("libx264")
    raw = write_video(media_dir / "raw.h264", [index_frame(i) for i in range(11)], container="h264")
    assert indices(read_frames(raw)) == [5]
    assert indices(read_frames(raw, 3)) == expected(11, 3)
    with pytest.raises(VideoError, match="no timestamps"):
        read_frames(raw, start=0.2)


def test_audio_track_of_a_video_goes_through_load_audio(media_dir):
    """The foundation's audio path reads a video's audio: mean downmix of the stereo track and
    soxr resampling to the asked rate."""
    _need("libx264")
    path = write_video(media_dir / "tone.mp4", [index_frame(i) for i in range(20)], audio_hz=440)
    wave, sr = load_audio(path, sample_rate=16000)
    assert sr == 16000 and wave.ndim == 1 and abs(len(wave) / sr - 2.0) < 0.1
    assert dominant_frequency(wave, sr) == pytest.approx(440, abs=3)
    assert 0.4 < np.abs(wave[sr // 2 : sr]).max() < 0.6  # 0.5 amplitude: mean, not sum


# --- errors ----------------------------------------------------------------------------------


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(VideoError, match=r"nope\.mp4: file not found"):
        read_frames(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoError, match=r"empty\.mp4: the file is empty"):
        read_frames(empty)
    with pytest.raises(VideoError, match="is a folder"):
        read_frames(tmp_path)
    assert issubclass(VideoError, DataError)


def test_text_file_renamed_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(VideoError, match=r"notes\.mp4: cannot decode video.*re-encode"):
        read_frames(fake)


def test_truncated_video(long_mp4, tmp_path):
    broken = tmp_path / "truncated.mp4"
    broken.write_bytes(long_mp4.read_bytes()[:2000])
    with pytest.raises(VideoError, match=r"truncated\.mp4"):
        read_frames(broken)


def test_audio_only_file_asked_for_frames(tmp_path):
    path = write_av(tmp_path / "tone.m4a", tone_signal([440], 16000), 16000, container="mp4")
    with pytest.raises(VideoError, match=r"tone\.m4a: the file has no video track.*load_audio"):
        read_frames(path)


def test_video_track_with_zero_frames(tmp_path):
    """A video track declared in the header but never given a frame (the audio track has data)."""
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.full((1, 1024), 0.1, np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    with pytest.raises(VideoError, match=r"zero\.mkv: the video track holds no frames"):
        read_frames(path)


def test_oversized_file_is_refused_before_decoding(eleven_frames):
    size = eleven_frames.stat().st_size
    assert len(read_frames(eleven_frames, max_bytes=size)) == 1
    with pytest.raises(VideoError, match=rf"{size:,} bytes, over the 100 bytes limit"):
        read_frames(eleven_frames, max_bytes=100)
    with pytest.raises(ValueError, match="at least 1"):
        read_frames(eleven_frames, 0)
