"""aiSFX backend on real Kitchen20 audio: front end, determinism, batching, downmix, rates."""

from __future__ import annotations

import numpy as np
import pytest

from harken.data.audio import load_audio
from harken.encoders.aisfx import (
    BLOCK_FRAMES,
    N_MELS,
    log_mel,
    mel_filterbank,
    spectrogram_blocks,
)
from harken.encoders.base import get_encoder

from .conftest import cosine, kitchen_clip

# Measured: 1.0 (the 16 kHz file is resampled to 44.1 kHz by the same soxr call that made the
# 44.1 kHz file, so both reach the model as the same samples up to WAV float rounding).
RATE_COSINE_MIN = 0.999


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("aisfx")


def test_mel_filterbank_is_unit_sum():
    fb = mel_filterbank()
    assert fb.shape == (1025, N_MELS)
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-12)


def test_log_mel_frames_follow_essentia_framecutter():
    # Frames are centred on 0, 1024, ...: the last is the first whose centre reaches the end.
    assert log_mel(np.ones(1024, np.float32)).shape == (2, N_MELS)
    assert log_mel(np.ones(1025, np.float32)).shape == (3, N_MELS)
    assert np.all(log_mel(np.zeros(5000, np.float32)) == 0)  # silence is 0 after log10(1e4x+1)


def test_blocks_pad_short_and_cover_long(encoder):
    short = spectrogram_blocks(np.ones((30, N_MELS), np.float32), encoder.policy)
    assert short.shape == (1, BLOCK_FRAMES, N_MELS)
    assert np.all(short[0, :30] == 1) and np.all(short[0, 30:] == 0)
    spec = np.arange(260, dtype=np.float32)[:, None] * np.ones((1, N_MELS), np.float32)
    blocks = spectrogram_blocks(spec, encoder.policy)
    assert [b[0, 0] for b in blocks] == [0, 50, 100, 150, 160]  # hop 50, last ends at the end
    assert blocks[-1][-1, 0] == 259


def test_shapes_and_dtype(encoder, clip_path):
    wave, _ = load_audio(clip_path, encoder.sample_rate)
    emb = encoder.embed([wave, wave[:20000]])
    assert emb.shape == (2, 512) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb))


def test_alone_equals_batched_and_repeatable(encoder):
    waves = [load_audio(kitchen_clip(i), encoder.sample_rate)[0] for i in (0, 5, 9)]
    batched = encoder.embed(waves)
    alone = np.concatenate([encoder.embed([w]) for w in waves])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-6)
    assert np.array_equal(encoder.embed(waves), batched)


def test_stereo_with_equal_channels_embeds_like_mono(encoder, variant_files):
    mono, _ = load_audio(variant_files["mono"], encoder.sample_rate)
    stereo, _ = load_audio(variant_files["stereo"], encoder.sample_rate)
    assert np.array_equal(encoder.embed([stereo]), encoder.embed([mono]))


def test_44k_and_16k_versions_embed_alike(encoder, variant_files):
    e16 = encoder.embed([load_audio(variant_files["16k"], encoder.sample_rate)[0]])
    e44 = encoder.embed([load_audio(variant_files["44k"], encoder.sample_rate)[0]])
    assert cosine(e16, e44) > RATE_COSINE_MIN


def test_different_sounds_embed_differently(encoder):
    a, b = (encoder.embed([load_audio(kitchen_clip(i), 44100)[0]]) for i in (0, 15))
    assert cosine(a, b) < 0.999
