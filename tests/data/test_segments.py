"""cut_segments on a real media container written with PyAV."""

from __future__ import annotations

import os

import pytest
import soundfile as sf

from harken.data.audio import load_audio
from harken.data.manifest import Clip, Manifest
from harken.data.segments import cut_segments, segment_filename
from harken.errors import AudioError

from .conftest import dominant_frequency


def _manifest(path, spans, name="toy"):
    clips = [
        Clip(f"P01_01_{i}", path, {"label": f"t{i}"}, start=s, end=e, video_path=path)
        for i, (s, e) in enumerate(spans)
    ]
    return Manifest(name, clips)


def test_cut_spans_have_right_length_and_tone(tones_mp4, tmp_path):
    path, freqs, _ = tones_mp4
    # unsorted, overlapping spans, one inside each second and one across seconds 2-3
    spans = [(3.25, 3.75), (0.2, 0.8), (1.1, 1.9), (2.5, 3.5), (5.3, 5.9)]
    out = cut_segments(_manifest(path, spans), tmp_path / "cut", sample_rate=16000, progress=False)
    assert [c.clip_id for c in out] == [f"P01_01_{i}" for i in range(len(spans))]
    for clip, (start, end) in zip(out, spans, strict=True):
        assert clip.start is None and clip.end is None and clip.video_path is None
        info = sf.info(str(clip.audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == round((end - start) * 16000)
        wave, sr = load_audio(clip.audio_path)
        if int(start) == int(end - 1e-9):
            assert dominant_frequency(wave, sr) == pytest.approx(freqs[int(start)], abs=4)
    across, _ = load_audio(out.clips[3].audio_path)
    assert dominant_frequency(across[:7000], 16000) == pytest.approx(freqs[2], abs=5)
    assert dominant_frequency(across[-7000:], 16000) == pytest.approx(freqs[3], abs=5)


def test_rerun_skips_finished_and_recuts_removed(tones_mp4, tmp_path):
    path, _, _ = tones_mp4
    manifest = _manifest(path, [(0.0, 1.0), (1.0, 2.0), (4.0, 5.0)])
    out = cut_segments(manifest, tmp_path, progress=False)
    files = [c.audio_path for c in out]
    for f in files:
        os.utime(f, ns=(1, 1))
    files[1].unlink()
    again = cut_segments(manifest, tmp_path, progress=False)
    assert [c.audio_path for c in again] == files
    assert files[0].stat().st_mtime_ns == 1 and files[2].stat().st_mtime_ns == 1
    assert files[1].is_file() and files[1].stat().st_mtime_ns != 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_failure_names_clip_and_source_and_keeps_done(tones_mp4, tmp_path):
    path, _, _ = tones_mp4
    manifest = _manifest(path, [(0.0, 1.0), (30.0, 31.0)])
    with pytest.raises(AudioError, match=r"'P01_01_1' of .*P01_01\.mp4.*beyond the end"):
        cut_segments(manifest, tmp_path, progress=False)
    assert (tmp_path / segment_filename("P01_01_0")).is_file()
    assert not (tmp_path / segment_filename("P01_01_1")).exists()
    missing = _manifest(tmp_path / "absent.MP4", [(0.0, 1.0)])
    with pytest.raises(AudioError, match=r"absent\.MP4: the recording is not found"):
        cut_segments(missing, tmp_path / "other", progress=False)


def test_wav_source_and_file_names(tmp_path):
    import numpy as np

    wav = tmp_path / "long.wav"
    sf.write(str(wav), np.sin(np.arange(44100 * 3) * 2 * np.pi * 440 / 44100) * 0.5, 44100)
    clips = [Clip("a/b c", wav, {"label": "x"}, start=1.0, end=2.0), Clip("whole", wav, {})]
    out = cut_segments(Manifest("w", clips), tmp_path / "cut", progress=False)
    assert out.clips[0].audio_path.name == "a%2Fb%20c.flac"
    wave, sr = load_audio(out.clips[0].audio_path)
    assert len(wave) == sr and dominant_frequency(wave, sr) == pytest.approx(440, abs=4)
    assert sf.info(str(out.clips[1].audio_path)).frames == 3 * 16000
    assert segment_filename("x" * 500).endswith(".flac") and len(segment_filename("x" * 500)) < 200
