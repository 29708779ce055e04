"""YAMNet backend on real Kitchen20 audio: determinism, batching, downmix and resampling."""

from __future__ import annotations

import numpy as np
import pytest

from harken.data.audio import load_audio
from harken.encoders.base import get_encoder
from harken.encoders.yamnet import log_mel_patches, yamnet_class_names

from .conftest import cosine, kitchen_clip

# Measured cosine between the 16 kHz clip and its 44.1 kHz version resampled back to 16 kHz:
# 0.9995 for this clip, 0.9936-0.9995 over 10 Kitchen20 clips (the int8 input quantisation
# magnifies the tiny resampling differences).
RATE_COSINE_MIN = 0.99


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("yamnet")


def test_shapes_and_dtype(encoder, clip_path):
    wave, _ = load_audio(clip_path, encoder.sample_rate)
    emb = encoder.embed([wave, wave[:4000]])  # a 0.25 s clip is padded to one patch
    assert emb.shape == (2, 521) and emb.dtype == np.float32
    assert np.all((emb >= 0) & (emb <= 1))
    assert len(yamnet_class_names()) == 521
    assert log_mel_patches(wave).shape[1:] == (1, 96, 64)


def test_alone_equals_batched_and_repeatable(encoder):
    waves = [load_audio(kitchen_clip(i), encoder.sample_rate)[0] for i in (0, 5)]
    batched = encoder.embed([waves[0], waves[1][: len(waves[1]) // 2]])
    alone = encoder.embed([waves[0]])
    assert np.array_equal(alone[0], batched[0])
    assert np.array_equal(encoder.embed([waves[0]]), alone)


def test_stereo_with_equal_channels_embeds_like_mono(encoder, variant_files):
    mono, _ = load_audio(variant_files["mono"], encoder.sample_rate)
    stereo, _ = load_audio(variant_files["stereo"], encoder.sample_rate)
    assert np.array_equal(encoder.embed([stereo]), encoder.embed([mono]))


def test_44k_and_16k_versions_embed_alike(encoder, variant_files):
    e16 = encoder.embed([load_audio(variant_files["16k"], encoder.sample_rate)[0]])
    e44 = encoder.embed([load_audio(variant_files["44k"], encoder.sample_rate)[0]])
    assert cosine(e16, e44) > RATE_COSINE_MIN
