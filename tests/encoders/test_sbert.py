"""sbert backend through a tiny random-weight BERT saved as a sentence-transformers folder."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest

from harken.encoders.base import get_encoder
from harken.encoders.sbert import DEFAULT_MODEL, SbertEncoder
from harken.errors import ModelUnavailableError

TEXTS = ["blender whirring", "a dog barking", "the kitchen", "water boiling pan sizzling"]


@pytest.fixture(scope="module")
def encoder(tiny_sbert_dir):
    return get_encoder(f"sbert:{tiny_sbert_dir}")


def test_loads_folder_through_registry(encoder, tiny_sbert_dir):
    assert encoder.name == f"sbert:{tiny_sbert_dir}" and encoder.modality == "text"
    emb = encoder.embed(TEXTS)
    assert emb.shape == (4, 32) and emb.dtype == np.float32 and encoder.dim == 32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_alone_equals_batched_and_repeatable(encoder):
    batched = encoder.embed(TEXTS)
    alone = np.concatenate([encoder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-6)
    assert np.array_equal(encoder.embed(TEXTS), batched)


def test_unnormalised_option(tiny_sbert_dir):
    raw = SbertEncoder(str(tiny_sbert_dir), normalize=False)
    assert not raw.config()["normalize"]
    assert not np.allclose(np.linalg.norm(raw.embed(TEXTS), axis=1), 1.0)


def test_default_is_the_papers_model():
    encoder = get_encoder("sbert")
    assert encoder.model_id == DEFAULT_MODEL and encoder.config()["model"] == DEFAULT_MODEL
    assert encoder.dim == 768  # known without loading


def test_missing_folder_raises_actionable_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"sbert:{tmp_path / 'missing'}").embed(["x"])


def test_unreachable_hub_model_suggests_minilm(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match=r"paraphrase-multilingual.*minilm"):
        get_encoder("sbert").embed(["x"])
