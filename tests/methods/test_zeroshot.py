"""``zeroshot``: joint-space classification with prompt-ensemble class embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.knowledge.classes import class_embeddings
from harken.methods.base import Batch, Classes, get_method
from harken.methods.bridge import Bridge
from harken.methods.joint import BridgeSpace
from harken.methods.zeroshot import ZeroShot

from .test_joint import FakeTagger


class UnitText:
    """A text encoder whose embeddings are fixed unit vectors (for exact ensemble maths)."""

    name = "unit-text"
    modality = "text"

    def embed(self, texts):
        vectors = {"a dog": [1.0, 0.0, 0.0], "the dog": [0.0, 1.0, 0.0], "a cat": [0.0, 0.0, 2.0]}
        return np.array([vectors[t] for t in texts], dtype=np.float32)


def test_prompt_ensemble_is_normalised_mean_of_normalised_templates():
    emb = class_embeddings(
        {"dog": ["a dog", "the dog"], "cat": ["a cat"]}, UnitText(), ["dog", "cat"]
    )
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(emb, [[s, s, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)


@pytest.fixture(scope="module")
def space() -> BridgeSpace:
    space = BridgeSpace(top_t=3, sim_threshold=0.0, sim_power=1.0)
    space._encoders["yamnet"] = FakeTagger()
    return space


def test_default_zeroshot_scores_like_the_bridge_method(space):
    posteriors = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    names = ["chop", "tap water"]
    classes = Classes(names, space.text_encoder.embed(["chopping food", "water from a tap"]))
    label_space = Classes(
        list(FakeTagger.class_names), space.text_encoder.embed(list(FakeTagger.class_names))
    )
    bridge = Bridge(label_space, top_t=3, sim_threshold=0.0, sim_power=1.0)
    zs = ZeroShot(space)
    batch = Batch({"yamnet": posteriors})
    np.testing.assert_allclose(zs.score(batch, classes), bridge.score(batch, classes), rtol=1e-5)
    assert zs.predict(batch, classes) == names


def test_probabilities_follow_the_activation(space):
    batch = Batch({"yamnet": np.array([[0.8, 0.1, 0.1]])})
    classes = Classes(["a", "b"], space.text_encoder.embed(["chopping", "water"]))
    p = ZeroShot(space).probabilities(batch, classes)
    assert p.shape == (1, 2) and np.isclose(p.sum(), 1.0)
    q = ZeroShot(space, activation="sigmoid").probabilities(batch, classes)
    assert ((q > 0) & (q < 1)).all() and not np.isclose(q.sum(), 1.0)
    with pytest.raises(ConfigError, match="activation"):
        ZeroShot(space, activation="relu")


def test_registry_names_pick_the_space():
    m = get_method("zeroshot:clap:/models/tiny")
    assert m.features == ("clap:/models/tiny",) and m.text_encoder == "clap-text:/models/tiny"
    assert get_method("clap").features == ("clap",)
    assert get_method("zeroshot").features == ("yamnet",) and not get_method("zeroshot").trainable
