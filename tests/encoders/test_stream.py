"""Long clips are decoded and embedded block by block: the same result as in memory (up to float
rounding of the mean), in memory bounded by the block size, with the same errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import harken.encoders.stream as stream_mod
from harken.data.audio import load_audio, resample
from harken.data.manifest import Clip
from harken.encoders.base import get_encoder
from harken.encoders.stream import embed_audio_file, is_long_clip
from harken.errors import AudioError, UnreliableAudioWarning
from harken.store.features import encode_clips
from tiny_models import save_tiny_clap

from .conftest import kitchen_clip

# The streamed mean sums window/patch embeddings in float64, the in-memory one averages float32
# rows: they differ by float32 rounding (measured ≤ 5e-7 on aiSFX's values of up to ~3).
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def long_real(tmp_path_factory):
    """Six real Kitchen20 clips (30 s) as one 44.1 kHz stereo 16-bit WAV."""
    waves = [load_audio(kitchen_clip(i))[0] for i in range(0, 12, 2)]
    wave = resample(np.concatenate(waves), 16000, 44100)
    path = tmp_path_factory.mktemp("long") / "kitchen40s.wav"
    sf.write(str(path), np.stack([wave, 0.5 * wave[::-1]], axis=1), 44100, subtype="PCM_16")
    return path


def _no_in_memory_decode(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the long clip was decoded in memory")

    monkeypatch.setattr(stream_mod, "load_audio", refuse)


def _in_memory(encoder, path, start=None, end=None):
    wave, _ = load_audio(path, encoder.sample_rate, start=start, end=end)
    return encoder.embed([wave])[0]


@pytest.mark.parametrize("name", ["yamnet", "aisfx"])
def test_streamed_equals_in_memory_on_real_audio(name, long_real, monkeypatch):
    encoder = get_encoder(name)
    full = _in_memory(encoder, long_real)
    span = _in_memory(encoder, long_real, 3.3, 23.1)
    if name == "yamnet":  # under the threshold: today's in-memory path, bit for bit
        assert np.array_equal(embed_audio_file(encoder, long_real), full)
    _no_in_memory_decode(monkeypatch)
    streamed = embed_audio_file(encoder, long_real, long_seconds=10.0, block_seconds=3.7)
    np.testing.assert_allclose(streamed, full, rtol=RTOL, atol=ATOL)
    streamed_span = embed_audio_file(
        encoder, long_real, 3.3, 23.1, long_seconds=10.0, block_seconds=2.9
    )
    np.testing.assert_allclose(streamed_span, span, rtol=RTOL, atol=ATOL)
    assert not np.allclose(streamed_span, streamed, rtol=RTOL, atol=ATOL)


def test_streamed_clap_windows_equal_in_memory(long_real, tmp_path, monkeypatch):
    encoder = get_encoder(f"clap:{save_tiny_clap(tmp_path / 'clap', fused=False)}")
    full = _in_memory(encoder, long_real)  # 30 s: five 10 s windows, hop 5 s
    _no_in_memory_decode(monkeypatch)
    streamed = embed_audio_file(encoder, long_real, long_seconds=10.0, block_seconds=4.1)
    np.testing.assert_allclose(streamed, full, rtol=RTOL, atol=ATOL)
    assert np.linalg.norm(streamed) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["ast", "hf"])
def test_streamed_ast_windows_equal_in_memory(kind, long_real, tiny_ast_dir, monkeypatch):
    encoder = get_encoder(f"{kind}:{tiny_ast_dir}")
    full = _in_memory(encoder, long_real)  # 30 s: 10.24 s / 10 s windows, hop half a window
    _no_in_memory_decode(monkeypatch)
    streamed = embed_audio_file(encoder, long_real, long_seconds=10.0, block_seconds=4.1)
    np.testing.assert_allclose(streamed, full, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def noise_minutes(tmp_path_factory):
    """Two minutes of noise, 8 kHz mono 16-bit (a long clip that is cheap to embed)."""
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("noise") / "noise.wav"
    sf.write(str(path), 0.2 * rng.standard_normal(120 * 8000), 8000, subtype="PCM_16")
    return path


def test_block_path_never_hands_the_whole_clip_to_yamnet(noise_minutes, monkeypatch):
    encoder = get_encoder("yamnet")
    seen: list[int] = []
    original = encoder.patch_scores

    def recording(wave):
        seen.append(len(wave))
        return original(wave)

    monkeypatch.setattr(encoder, "patch_scores", recording)
    _no_in_memory_decode(monkeypatch)
    emb = embed_audio_file(encoder, noise_minutes, long_seconds=30.0, block_seconds=5.0)
    # 5 s native blocks → 10 s at 16 kHz, plus at most one patch carried over between blocks
    assert len(seen) >= 12 and max(seen) <= 10 * 16000 + 2 * 15712
    assert sum(seen) < 1.1 * 120 * 16000  # each sample is scored about once, not re-read
    assert emb.shape == (521,) and np.all(np.isfinite(emb))


def test_block_path_holds_one_batch_of_aisfx_blocks(noise_minutes, monkeypatch):
    encoder = get_encoder("aisfx", batch_size=4)
    seen: list[int] = []
    original = encoder.block_embeddings

    def recording(blocks):
        seen.append(len(blocks))
        return original(blocks)

    monkeypatch.setattr(encoder, "block_embeddings", recording)
    _no_in_memory_decode(monkeypatch)
    emb = embed_audio_file(encoder, noise_minutes, 0.0, 30.0, long_seconds=20.0, block_seconds=5.0)
    # 30 s at 44.1 kHz = 1293 frames: blocks start at 0, 50, ..., 1150, plus one ending at the end
    n_frames = -(-30 * 44100 // 1024) + 1
    assert n_frames == 1293 and max(seen) == 4 and sum(seen) == 24 + 1
    assert emb.shape == (512,) and np.all(np.isfinite(emb))


def test_encode_clips_streams_only_long_clips(long_real, monkeypatch):
    encoder = get_encoder("yamnet")
    short = [Clip(clip_id=f"k{i}", audio_path=kitchen_clip(i)) for i in (1, 3)]
    long_clip = Clip(clip_id="long", audio_path=long_real, start=1.0, end=29.0)
    reference = encoder.embed(
        [load_audio(c.audio_path, encoder.sample_rate)[0] for c in short]
    )  # today's batched in-memory path
    monkeypatch.setattr(stream_mod, "LONG_CLIP_SECONDS", 20.0)
    assert is_long_clip(long_real, 1.0, 29.0) and not is_long_clip(long_real, 1.0, 19.0)
    emb = encode_clips(encoder, [short[0], long_clip, short[1]])
    assert np.array_equal(emb[[0, 2]], reference)
    np.testing.assert_allclose(
        emb[1], _in_memory(encoder, long_real, 1.0, 29.0), rtol=RTOL, atol=ATOL
    )


def test_streamed_clips_give_the_errors_of_load_audio(tmp_path):
    encoder = get_encoder("yamnet")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(40 * 8000, np.float32), 8000)
    bad = tmp_path / "nan.wav"
    wave = 0.1 * np.ones(40 * 8000, np.float32)
    wave[25 * 8000] = np.nan
    sf.write(str(bad), wave, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"silent\.wav: the audio is entirely silent"):
        embed_audio_file(encoder, silent, long_seconds=10.0, block_seconds=5.0)
    with pytest.raises(AudioError, match=r"nan\.wav: the audio holds NaN/inf"):
        embed_audio_file(encoder, bad, long_seconds=10.0, block_seconds=5.0)
    with pytest.raises(AudioError, match=r"missing\.wav: file not found"):
        embed_audio_file(encoder, tmp_path / "missing.wav", long_seconds=10.0)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(300))
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot decode audio \(unreadable header"):
        embed_audio_file(encoder, corrupt)


def test_tiny_and_near_silent_clips_are_embedded_with_a_warning(tmp_path):
    encoder = get_encoder("yamnet")
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    sf.write(str(tmp_path / "tiny.wav"), tone[:160], 16000)  # 10 ms
    sf.write(str(tmp_path / "quiet.wav"), 1e-4 * tone, 16000, subtype="FLOAT")  # -86 dBFS
    with pytest.warns(UnreliableAudioWarning, match=r"tiny\.wav: only 10\.0 ms"):
        tiny = embed_audio_file(encoder, tmp_path / "tiny.wav")
    with pytest.warns(UnreliableAudioWarning, match=r"quiet\.wav: near-silent \(peak -86 dBFS"):
        quiet = embed_audio_file(encoder, tmp_path / "quiet.wav")
    assert tiny.shape == quiet.shape == (521,)
    assert np.all(np.isfinite(tiny)) and np.all(np.isfinite(quiet))


def test_a_short_span_is_not_long_without_reading_the_header(tmp_path, monkeypatch):
    def no_header(*args, **kwargs):
        raise AssertionError("the header was read for a short span")

    monkeypatch.setattr(stream_mod, "span_duration", no_header)
    # a segment of a long recording: decided from the span alone
    assert not is_long_clip(__file__, 10.0, 15.0, long_seconds=20.0)
    with pytest.raises(AssertionError, match="header was read"):
        is_long_clip(__file__, 10.0, 45.0, long_seconds=20.0)
