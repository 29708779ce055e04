"""Generic hf backend: an audio checkpoint (tiny AST) and a text checkpoint (tiny BERT)."""

from __future__ import annotations

import numpy as np
import pytest

from harken.data.audio import load_audio
from harken.encoders.base import get_encoder
from harken.errors import ConfigError, ModelUnavailableError

from .conftest import kitchen_clip

TEXTS = ["blender whirring", "a dog barking the kitchen", "water"]


@pytest.fixture(scope="module")
def audio_encoder(tiny_ast_dir):
    return get_encoder(f"hf:{tiny_ast_dir}")


@pytest.fixture(scope="module")
def text_encoder(tiny_bert_dir):
    return get_encoder(f"hf:{tiny_bert_dir}")


def test_audio_checkpoint_is_detected_and_embeds(audio_encoder):
    assert audio_encoder.modality == "audio" and audio_encoder.sample_rate == 16000
    assert audio_encoder.dim == 32 and "policy" in audio_encoder.config()
    wave, _ = load_audio(kitchen_clip(0), 16000)
    batched = audio_encoder.embed([wave, wave[:4000]])
    assert batched.shape == (2, 32) and batched.dtype == np.float32
    assert np.array_equal(audio_encoder.embed([wave])[0], batched[0])


def test_text_checkpoint_is_detected_and_masks_padding(text_encoder):
    assert text_encoder.modality == "text" and text_encoder.sample_rate is None
    batched = text_encoder.embed(TEXTS)
    assert batched.shape == (3, 32) and batched.dtype == np.float32
    alone = np.concatenate([text_encoder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-6)
    assert np.array_equal(text_encoder.embed(TEXTS), batched)


def test_needs_a_model_and_reports_missing_folders(tmp_path):
    with pytest.raises(ConfigError, match="hf:<hub id or folder>"):
        get_encoder("hf")
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"hf:{tmp_path / 'missing'}").embed(["x"])
