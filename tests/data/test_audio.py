"""load_audio decode edge cases, AvReader seeking, and ClipPolicy windows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import (
    AvReader,
    ClipPolicy,
    audio_duration,
    downmix,
    load_audio,
    span_duration,
    stream_audio,
)
from harken.errors import AudioError, UnreliableAudioWarning

from .conftest import dominant_frequency, tone_signal, write_av

SR = 16000


def test_stereo_channels_are_averaged(tmp_path):
    left = np.full(SR, 0.5, np.float32)
    right = np.full(SR, -0.25, np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SR, subtype="FLOAT")
    wave, sr = load_audio(path)
    assert sr == SR and wave.shape == (SR,)
    np.testing.assert_allclose(wave, 0.125, atol=1e-6)
    np.testing.assert_allclose(downmix(np.array([[1.0, 0.0], [0.0, 1.0]])), [0.5, 0.5])


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "file not found"), (b"", "empty"), (b"\x13\x37" * 500, "cannot decode")],
)
def test_missing_empty_and_corrupt_files(tmp_path, content, match):
    path = tmp_path / "clip.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=match) as err:
        load_audio(path)
    assert "clip.wav" in str(err.value)


def test_corrupt_random_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=r"noise\.wav: cannot decode"):
        load_audio(path)


def test_silent_file_and_span_beyond_end(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(SR, np.float32), SR)
    with pytest.raises(AudioError, match="entirely silent"):
        load_audio(silent)
    tone = tmp_path / "tone.wav"
    sf.write(str(tone), tone_signal([440], SR), SR)
    with pytest.raises(AudioError, match=r"no audio samples in span \[5.0, 6.0\]"):
        load_audio(tone, start=5.0, end=6.0)
    wave, _ = load_audio(tone, start=0.5, end=9.0)  # clipped at the end of the file
    assert len(wave) == SR // 2
    with pytest.raises(AudioError, match="not after start"):
        load_audio(tone, start=0.5, end=0.5)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [
        (".wav", "WAV", "PCM_16"),
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_soundfile_formats(tmp_path, suffix, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile here cannot write {fmt}")
    path = tmp_path / f"tone{suffix}"
    sf.write(str(path), tone_signal([440, 880], SR), SR, format=fmt, subtype=subtype)
    wave, sr = load_audio(path, sample_rate=22050)
    assert sr == 22050 and abs(len(wave) / sr - 2.0) < 0.1
    head, _ = load_audio(path, start=0.2, end=0.8)
    tail, _ = load_audio(path, start=1.2, end=1.8)
    assert dominant_frequency(head, SR) == pytest.approx(440, abs=5)
    assert dominant_frequency(tail, SR) == pytest.approx(880, abs=5)


def test_mp4_audio_track(tones_mp4):
    path, freqs, sr = tones_mp4
    wave, rate = load_audio(path, sample_rate=SR)
    assert rate == SR and abs(len(wave) / SR - 6.0) < 0.1
    for second, freq in enumerate(freqs):
        part, _ = load_audio(path, start=second + 0.1, end=second + 0.9)
        assert len(part) == round(0.8 * sr)
        assert dominant_frequency(part, sr) == pytest.approx(freq, abs=4)


def test_mp4_span_equals_slice_of_full_decode(tones_mp4):
    """Regression: seeking straight to ``start`` garbled the first AAC frame of a span."""
    path, _, sr = tones_mp4
    full, _ = load_audio(path)
    for start in (1.0, 2.5, 3.01, 4.7):
        part, _ = load_audio(path, start=start, end=start + 0.5)
        lo = round(start * sr)
        np.testing.assert_allclose(part, full[lo : lo + len(part)], atol=1e-4)


def test_av_reader_sequential_and_backward_reads(tones_mp4):
    path, freqs, sr = tones_mp4
    with AvReader(path) as reader:
        for start in (0.2, 1.2, 5.2, 2.2):  # forward, a jump, then backwards (seek)
            data, rate = reader.read(start, start + 0.5)
            assert rate == sr and data.shape == (round(0.5 * sr), 2)
            assert dominant_frequency(data.mean(axis=1), sr) == pytest.approx(
                freqs[int(start)], abs=5
            )


def test_mkv_with_mp3_or_opus_track(tmp_path):
    path = write_av(
        tmp_path / "clip.mkv",
        tone_signal([600], 48000),
        48000,
        codec="libopus",
        container="matroska",
        channels=1,
    )
    wave, sr = load_audio(path, start=0.3, end=0.7)
    assert sr == 48000 and len(wave) == round(0.4 * sr)
    assert dominant_frequency(wave, sr) == pytest.approx(600, abs=5)


def test_clip_policy_pad_crop_and_windows():
    wave = np.arange(10, dtype=np.float32) + 1
    (padded,) = ClipPolicy(min_seconds=1.5).windows(wave, 10)
    assert len(padded) == 15 and np.all(padded[10:] == 0) and np.all(padded[:10] == wave)
    (centre,) = ClipPolicy(max_seconds=0.4, long="centre").windows(wave, 10)
    np.testing.assert_array_equal(centre, [4, 5, 6, 7])
    windows = ClipPolicy(max_seconds=0.4, hop_fraction=0.5).windows(wave, 10)
    assert [w[0] for w in windows] == [1, 3, 5, 7]  # starts 0, 2, 4, 6: the last ends at the end
    assert all(len(w) == 4 for w in windows)
    covered = np.zeros(10, bool)
    for w in windows:
        covered[int(w[0]) - 1 : int(w[-1])] = True
    assert covered.all()
    odd = ClipPolicy(max_seconds=0.4, hop_fraction=0.75).windows(np.arange(11.0) + 1, 10)
    assert [w[0] for w in odd] == [1, 4, 7, 8]  # a final window is added to reach the end
    assert len(ClipPolicy(max_seconds=2.0).windows(wave, 10)) == 1
    with pytest.raises(ValueError, match="window"):
        ClipPolicy(long="random")


# ---------------------------------------------------------------------------------------------
# streaming decode, durations, warnings


def _streamed(path, sample_rate=None, **kwargs) -> tuple[np.ndarray, list[int]]:
    blocks = list(stream_audio(path, sample_rate, **kwargs))
    return np.concatenate(blocks), [len(b) for b in blocks]


def _noise(seconds: float, sr: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((round(seconds * sr), channels))).astype(np.float32)


@pytest.mark.parametrize(
    ("sr", "subtype", "target"),
    [
        (44100, "PCM_16", 16000),
        (8000, "PCM_24", 16000),
        (96000, "FLOAT", 44100),
        (16000, "DOUBLE", None),
    ],
)
def test_stream_equals_load_audio_sample_for_sample(tmp_path, sr, subtype, target):
    path = tmp_path / f"clip_{sr}.wav"
    sf.write(str(path), _noise(4.3, sr, 2), sr, subtype=subtype)
    full, rate = load_audio(path, target)
    streamed, sizes = _streamed(path, target, block_seconds=0.7)
    assert rate == (target or sr) and len(sizes) >= 6
    np.testing.assert_array_equal(streamed, full)
    span, _ = load_audio(path, target, start=1.13, end=3.9)
    streamed_span, _ = _streamed(path, target, start=1.13, end=3.9, block_seconds=0.5)
    np.testing.assert_array_equal(streamed_span, span)


def test_stream_reads_at_most_one_block_of_native_audio(tmp_path, monkeypatch):
    import soundfile

    path = tmp_path / "long.wav"
    sf.write(str(path), _noise(20.0, 8000, 2), 8000, subtype="PCM_16")
    reads: list[int] = []
    original = soundfile.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", counting_read)
    streamed, sizes = _streamed(path, 16000, block_seconds=1.0)
    assert len(streamed) == 20 * 16000 and max(reads) == 8000 and len(reads) == 20
    assert max(sizes) <= 2 * 16000  # resampled blocks stay about one block long


def test_stereo_44k_equals_its_mono_downmix(tmp_path):
    stereo = _noise(3.0, 44100, 2, seed=1)
    sf.write(str(tmp_path / "stereo.wav"), stereo, 44100, subtype="FLOAT")
    mono = (stereo.astype(np.float64).mean(axis=1)).astype(np.float32)
    sf.write(str(tmp_path / "mono.wav"), mono, 44100, subtype="FLOAT")
    for rate in (None, 16000):
        a, _ = load_audio(tmp_path / "stereo.wav", rate)
        b, _ = load_audio(tmp_path / "mono.wav", rate)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(_streamed(tmp_path / "stereo.wav", rate)[0], b)


def test_mp4_stream_equals_read_through_av_reader(tones_mp4):
    path, _, sr = tones_mp4
    full, _ = load_audio(path)
    streamed, sizes = _streamed(path, block_seconds=0.4)
    assert len(sizes) > 10
    np.testing.assert_array_equal(streamed, full)
    span, _ = load_audio(path, start=2.3, end=4.1)
    np.testing.assert_array_equal(_streamed(path, start=2.3, end=4.1, block_seconds=0.3)[0], span)
    with AvReader(path) as reader:  # blocks leave the reader usable for span reads
        blocks = list(reader.blocks(1.0, 2.0, 1000))
        data, _ = reader.read(0.5, 1.0)
    assert sum(len(b) for b in blocks) == sr and max(len(b) for b in blocks) == 1000
    assert len(data) == round(0.5 * sr)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sr", [8000, 96000])
def test_nan_or_inf_samples_name_the_file(tmp_path, bad, sr):
    wave = _noise(2.0, sr, 1)[:, 0]
    wave[sr + 17] = bad
    path = tmp_path / f"bad_{sr}.wav"
    sf.write(str(path), wave, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match=rf"bad_{sr}\.wav: the audio holds NaN/inf"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match=rf"bad_{sr}\.wav: the audio holds NaN/inf"):
        _streamed(path, 16000, block_seconds=0.5)


def test_stream_gives_the_errors_of_load_audio(tmp_path, tones_mp4):
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros((3 * 8000, 2), np.float32), 8000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x13\x37" * 500)
    cases = [
        (tmp_path / "missing.wav", {}, r"missing\.wav: file not found"),
        (empty, {}, r"empty\.wav: the file is empty"),
        (corrupt, {}, r"corrupt\.wav: cannot decode"),
        (silent, {}, r"silent\.wav: the audio is entirely silent"),
        (tones_mp4[0], {"start": 50.0, "end": 60.0}, r"no audio samples in span \[50.0, 60.0\]"),
    ]
    for path, span, match in cases:
        with pytest.raises(AudioError, match=match):
            load_audio(path, 16000, **span)
        with pytest.raises(AudioError, match=match):
            _streamed(path, 16000, block_seconds=0.5, **span)


def test_video_without_audio_track(tmp_path):
    import av

    path = tmp_path / "silent_film.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    for read in (lambda: load_audio(path), lambda: _streamed(path), lambda: audio_duration(path)):
        with pytest.raises(AudioError, match=r"silent_film\.mp4: the file has no audio track"):
            read()


def test_audio_duration_raises_instead_of_returning_none(tmp_path, tones_mp4):
    tone = tmp_path / "tone.flac"
    sf.write(str(tone), tone_signal([440, 660], SR), SR)
    assert audio_duration(tone) == pytest.approx(2.0)
    assert span_duration(tone, 0.5, 9.0) == pytest.approx(1.5)
    assert span_duration(tone, 5.0, 9.0) == 0.0
    assert audio_duration(tones_mp4[0]) == pytest.approx(6.0, abs=0.1)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot decode audio \(unreadable header"):
        audio_duration(corrupt)
    with pytest.raises(AudioError, match="file not found"):
        audio_duration(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match=r"cannot decode audio \(unreadable header"):
        load_audio(corrupt, max_seconds=10.0)  # the length check no longer lets it through


def test_tiny_and_near_silent_clips_warn_but_embed(tmp_path):
    tiny = tmp_path / "tiny.wav"
    sf.write(str(tiny), tone_signal([440], SR, seconds_each=0.01), SR)
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), tone_signal([440], SR) * 1e-3, SR, subtype="FLOAT")  # peak −66 dBFS
    normal = tmp_path / "normal.wav"
    sf.write(str(normal), tone_signal([440], SR), SR)
    with pytest.warns(UnreliableAudioWarning, match=r"tiny\.wav: only 10\.0 ms of audio"):
        wave, _ = load_audio(tiny)
    assert len(wave) == 160
    with pytest.warns(UnreliableAudioWarning, match=r"quiet\.wav: near-silent \(peak -66 dBFS"):
        load_audio(quiet)
    with pytest.warns(UnreliableAudioWarning, match=r"quiet\.wav: near-silent"):
        _streamed(quiet, block_seconds=0.1)
    with pytest.warns(UnreliableAudioWarning, match=r"tone\.wav: only 50\.0 ms"):
        sf.write(str(tmp_path / "tone.wav"), tone_signal([440], SR), SR)
        load_audio(tmp_path / "tone.wav", start=0.2, end=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableAudioWarning)
        load_audio(normal)
        _streamed(normal, block_seconds=0.1)


@pytest.mark.parametrize(
    "policy",
    [
        ClipPolicy(max_seconds=0.4, hop_fraction=0.5),
        ClipPolicy(max_seconds=0.4, hop_fraction=0.75),
        ClipPolicy(min_seconds=0.3, max_seconds=0.5, hop_fraction=0.3),
        ClipPolicy(min_seconds=0.2),
        ClipPolicy(max_seconds=0.4, long="centre"),
    ],
)
@pytest.mark.parametrize("length", [1, 3, 4, 5, 11, 37, 40])
def test_stream_windows_equal_in_memory_windows(policy, length):
    wave = np.arange(length, dtype=np.float32) + 1
    expected = policy.windows(wave, 10)
    for cuts in ([], [1], [3, 4, 10], list(range(1, length))):
        blocks = np.split(wave, [c for c in cuts if c < length])
        got = list(policy.stream_windows(blocks, 10))
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    frames = np.stack([wave, -wave], axis=1)  # 2-D frames pad with zero rows like samples
    got = list(policy.stream_windows(np.split(frames, [2, 7]) if length > 7 else [frames], 10))
    np.testing.assert_array_equal(np.stack([g[:, 0] for g in got]), np.stack(expected))


def test_a_truncated_wav_is_refused_not_decoded_short(tmp_path):
    import soundfile as sf

    from harken.data.audio import load_audio, stream_audio

    full = tmp_path / "full.wav"
    sf.write(full, np.full(16000, 0.1, np.float32), 16000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    assert len(load_audio(full)[0]) == 16000
    with pytest.raises(AudioError, match=r"cut\.wav: truncated WAV file.*ends 16022 bytes short"):
        load_audio(cut)
    with pytest.raises(AudioError, match="truncated"):
        list(stream_audio(cut, 16000))


def test_a_wav_whose_size_was_left_open_by_a_streaming_writer_still_decodes(tmp_path):
    import soundfile as sf

    from harken.data.audio import load_audio

    path = tmp_path / "open.wav"
    sf.write(path, np.full(1600, 0.1, np.float32), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert len(load_audio(path)[0]) == 1600
