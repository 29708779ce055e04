"""load_audio decode edge cases, AvReader seeking, and ClipPolicy windows."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import AvReader, ClipPolicy, downmix, load_audio
from harken.errors import AudioError

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
