"""AST backend through a tiny random-weight ASTModel + the real ASTFeatureExtractor."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest

from harken.data.audio import load_audio
from harken.encoders.ast import DEFAULT_MODEL, MAX_SECONDS, AstEncoder
from harken.encoders.base import get_encoder
from harken.errors import ModelUnavailableError

from .conftest import kitchen_clip


@pytest.fixture(scope="module")
def encoder(tiny_ast_dir):
    return get_encoder(f"ast:{tiny_ast_dir}")


@pytest.fixture(scope="module")
def waves():
    """Five real 5 s Kitchen20 clips at 16 kHz."""
    return [load_audio(kitchen_clip(i), 16000)[0] for i in range(0, 20, 4)]


def test_shapes_dtype_and_spec(encoder, tiny_ast_dir, waves):
    emb = encoder.embed(waves[:2])
    assert emb.shape == (2, 32) and emb.dtype == np.float32 and encoder.dim == 32
    assert encoder.name == f"ast:{tiny_ast_dir}" and encoder.sample_rate == 16000
    assert encoder.config()["policy"]["max_seconds"] == MAX_SECONDS


def test_alone_equals_batched_and_repeatable(encoder, waves):
    batched = encoder.embed([waves[0], waves[1][:8000]])
    alone = encoder.embed([waves[0]])
    np.testing.assert_allclose(alone[0], batched[0], rtol=0, atol=1e-6)
    assert np.array_equal(encoder.embed([waves[0]]), alone)


def test_long_clip_is_the_mean_of_its_windows(encoder, waves):
    long = np.concatenate(waves)  # 25 s
    windows = encoder.policy.windows(long, 16000)
    assert [round(len(w) / 16000, 2) for w in windows] == [MAX_SECONDS] * 4
    expected = encoder._embed_windows(windows).mean(axis=0)
    (emb,) = encoder.embed([long])
    np.testing.assert_allclose(emb, expected, rtol=0, atol=1e-6)
    head = encoder.embed([long[: int(MAX_SECONDS * 16000)]])[0]
    assert not np.allclose(emb, head)


def test_default_checkpoint_and_offline_error(monkeypatch):
    encoder = AstEncoder()
    assert encoder.name == "ast" and encoder.model_id == DEFAULT_MODEL and encoder.dim == 768
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="ast-finetuned-audioset"):
        encoder.embed([np.ones(16000, np.float32)])
