"""ConSE (Norouzi et al. 2014) scores by hand and its label ↔ embedding alignment."""

from __future__ import annotations

import numpy as np
import pytest

from harken.methods.base import Batch, Classes
from harken.methods.conse import ConSE, conse_scores

from .conftest import permuted

# 3 tagger labels, 2 candidate classes, 2-d embeddings with known cosines:
# label 0 ∥ class a, label 1 ∥ class b, label 2 has cos 0.6 with a and 0.8 with b.
LABEL_EMB = np.array([[2.0, 0.0], [0.0, 0.5], [3.0, 4.0]])
CLASS_EMB = np.array([[1.0, 0.0], [0.0, 3.0]])
POSTERIORS = np.array([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]])


def test_conse_scores_match_a_hand_computation():
    got = conse_scores(POSTERIORS, LABEL_EMB, CLASS_EMB, top_t=2, sim_threshold=0.5, sim_power=2.0)
    # φ(s) = max(s − 0.5, 0)²: label 0 → (0.25, 0), label 1 → (0, 0.25), label 2 → (0.01, 0.09)
    # clip 0 keeps labels 0 (0.5) and 2 (0.3); clip 1 keeps labels 1 (0.6) and 2 (0.3)
    expected = np.array(
        [
            [(0.5 * 0.25 + 0.3 * 0.01) / 0.8, (0.3 * 0.09) / 0.8],
            [(0.3 * 0.01) / 0.9, (0.6 * 0.25 + 0.3 * 0.09) / 0.9],
        ]
    )
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_top_t_of_all_labels_equals_the_full_weighted_sum():
    # δ = 0, γ = 1: φ is the cosine itself (all cosines here are ≥ 0)
    cos = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    full = POSTERIORS @ cos / POSTERIORS.sum(axis=1, keepdims=True)
    for top_t in (3, 10):  # T ≥ K keeps every label
        np.testing.assert_allclose(
            conse_scores(POSTERIORS, LABEL_EMB, CLASS_EMB, top_t=top_t), full, rtol=1e-6
        )
    top1 = conse_scores(POSTERIORS, LABEL_EMB, CLASS_EMB, top_t=1)
    np.testing.assert_allclose(top1, [[1.0, 0.0], [0.0, 1.0]], atol=1e-7)


def test_shifted_threshold_reproduces_the_original_conse_ranking():
    """With δ = −1, γ = 1, φ(s) = s + 1 ranks classes like cos(f(x), e_c) of Norouzi Eq. 1."""
    rng = np.random.default_rng(0)
    posteriors = rng.random((6, 20))
    labels, classes = rng.normal(size=(20, 8)), rng.normal(size=(5, 8))
    ours = conse_scores(posteriors, labels, classes, top_t=4, sim_threshold=-1.0)
    unit = labels / np.linalg.norm(labels, axis=1, keepdims=True)
    for n in range(6):
        top = np.argsort(-posteriors[n])[:4]
        f = posteriors[n, top] @ unit[top] / posteriors[n, top].sum()
        cos = classes @ f / np.linalg.norm(classes, axis=1) / np.linalg.norm(f)
        assert np.argsort(-ours[n]).tolist() == np.argsort(-cos).tolist()


def _label_space() -> Classes:
    return Classes(["Speech", "Water", "Chopping"], LABEL_EMB)


def test_method_scores_with_its_settings_and_candidate_order_changes_nothing():
    rng = np.random.default_rng(1)
    batch = Batch({"yamnet": rng.random((12, 3))})
    # non-negative embeddings: every φ > 0, so no score ties that argmax would break by order
    classes = Classes(["a", "b", "c", "d"], rng.random(size=(4, 2)))
    method = ConSE(_label_space(), top_t=2, sim_threshold=0.0, sim_power=2.0)
    np.testing.assert_allclose(
        method.score(batch, classes),
        conse_scores(
            batch.features["yamnet"],
            LABEL_EMB,
            classes.embeddings,
            top_t=2,
            sim_threshold=0.0,
            sim_power=2.0,
        ),
    )
    reference = method.predict(batch, classes)
    assert len(set(reference)) > 1
    for seed in range(3):
        assert method.predict(batch, permuted(classes, seed)) == reference


def test_method_reads_the_named_tagger_features():
    method = ConSE(_label_space(), tagger="panns")
    assert method.features == ("panns",)
    batch = Batch({"panns": POSTERIORS})
    classes = Classes(["a", "b"], CLASS_EMB)
    assert method.predict(batch, classes) == ["a", "b"]
    assert method.config() == {
        "tagger": "panns",
        "top_t": 10,
        "sim_threshold": -1.0,
        "sim_power": 1.0,
    }


def test_method_without_label_space_raises():
    with pytest.raises(ValueError, match="label_space"):
        ConSE().score(Batch({"yamnet": POSTERIORS}), Classes(["a", "b"], CLASS_EMB))
