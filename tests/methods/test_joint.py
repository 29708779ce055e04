"""Joint spaces: the bridge as inner products, CLAP-style probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.methods.conse import conse_scores, l2_normalize
from harken.methods.joint import (
    BridgeSpace,
    get_joint_space,
    sigmoid,
    softmax,
    tagger_label_texts,
)


class FakeTagger:
    name = "fake-tagger"
    modality = "audio"
    dim = 3
    sample_rate = 16000
    class_names = ("Chopping (food)", "Water tap, faucet", "Speech")

    def config(self) -> dict:
        return {"name": self.name}


@pytest.fixture(scope="module")
def bridge() -> BridgeSpace:
    space = BridgeSpace(top_t=2, sim_threshold=0.1, sim_power=2.0, label_text="name")
    space._encoders["yamnet"] = FakeTagger()  # the real label names come from YAMNet; 3 suffice
    return space


def test_bridge_inner_product_is_the_conse_score(bridge):
    rng = np.random.default_rng(0)
    posteriors = rng.random((5, 3))
    texts = bridge.text_encoder.embed(["chopping onions", "filling a jug with water"])
    labels = bridge.text_encoder.embed(list(FakeTagger.class_names))
    expected = conse_scores(posteriors, labels, texts, top_t=2, sim_threshold=0.1, sim_power=2.0)
    got = bridge.scores(posteriors, texts)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert bridge.logit_scale is None


def test_bridge_vectors_rank_the_matching_text_first(bridge):
    chop, water = bridge.text_vectors(
        bridge.text_encoder.embed(["chopping vegetables", "running water from a tap"])
    )
    a = bridge.audio_vectors(np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]]))
    assert a[0] @ chop > a[0] @ water and a[1] @ water > a[1] @ chop
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)  # top-T weights sum to 1
    assert (a > 0).sum(axis=1).tolist() == [2, 2]  # T = 2 labels kept per clip


def test_audio_query_vectors_are_unit_norm(bridge):
    q = bridge.audio_query_vectors(np.array([[0.2, 0.7, 0.1]]))
    assert math.isclose(float(np.linalg.norm(q)), 1.0, rel_tol=1e-6)


def test_softmax_and_sigmoid_against_hand_values():
    p = softmax(np.array([[0.0, math.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    np.testing.assert_allclose(sigmoid(np.array([0.0, math.log(3.0), -800.0])), [0.5, 0.75, 0.0])
    assert np.isfinite(softmax(np.array([[1000.0, -1000.0]]))).all()


def test_l2_normalize_leaves_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_unknown_space_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown joint space 'nope'"):
        get_joint_space("nope")


def test_clap_space_names_its_two_towers():
    space = get_joint_space("clap:/models/my-clap")
    assert (space.audio_name, space.text_name) == (
        "clap:/models/my-clap",
        "clap-text:/models/my-clap",
    )
    assert get_joint_space("msclap").text_name == "msclap-text"


def test_label_texts_name_and_sound():
    names = ["Chopping (food)", "TV noise"]
    assert tagger_label_texts(names, "name") == {n: [n] for n in names}
    sound = tagger_label_texts(names, "sound")
    assert sound["Chopping (food)"][0] == "the sound of chopping (food)."
    assert sound["TV noise"][2] == "TV noise can be heard."  # an all-capital word stays
    assert all(len(v) == 5 for v in sound.values())
    with pytest.raises(ConfigError, match="label_text must be one of"):
        tagger_label_texts(names, "descriptions")
    with pytest.raises(ConfigError, match="label_text must be one of"):
        BridgeSpace(label_text="descriptions")


def test_sound_label_side_is_the_normalised_template_mean():
    space = BridgeSpace(label_text="sound", top_t=2, sim_threshold=0.1)
    space._encoders["yamnet"] = FakeTagger()
    texts = tagger_label_texts(list(FakeTagger.class_names), "sound")
    expected = np.stack(
        [l2_normalize(space.text_encoder.embed(texts[n])).mean(axis=0) for n in texts]
    )
    np.testing.assert_allclose(space.label_embeddings(), l2_normalize(expected), atol=1e-6)
    assert space.config()["label_text"] == "sound" and space.logit_scale is None


def test_predict_bridge_is_the_configuration_chosen_on_non_test_text():
    from harken.api import _model_settings

    plain = BridgeSpace()  # index/search: typed queries, plain label names
    assert (plain.label_text, plain.sim_threshold) == ("name", 0.3)
    space = BridgeSpace(**_model_settings(None)["space_options"])
    assert (space.text_name, space.label_text) == ("minilm", "sound")
    assert (space.top_t, space.sim_threshold, space.sim_power) == (50, 0.518, 2.0)
