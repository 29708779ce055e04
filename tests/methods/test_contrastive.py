"""``contrastive``: MS-CLAP Eq. 3–4 on hand-computed cases, and training on a synthetic task."""

from __future__ import annotations

import math

import numpy as np
import torch

from harken.methods.contrastive import Contrastive, clip_loss
from harken.metrics.classification import unweighted_accuracy

from .conftest import permuted


def _lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


def test_clip_loss_matches_a_hand_computed_3x3_case():
    # E_t = I, so C = τ E_t E_aᵀ = τ E_aᵀ; with τ = 1:
    # C = [[1, .5, 0], [0, .5, 0], [0, 0, 2]]
    e_text = torch.eye(3)
    e_audio = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 2.0]])
    # ℓ_text: rows of C, true column on the diagonal
    l_text = -((1 - _lse(1, 0.5, 0)) + (0.5 - _lse(0, 0.5, 0)) + (2 - _lse(0, 0, 2))) / 3
    # ℓ_audio: columns of C (rows of Cᵀ)
    l_audio = -((1 - _lse(1, 0, 0)) + (0.5 - _lse(0.5, 0.5, 0)) + (2 - _lse(0, 0, 2))) / 3
    got = clip_loss(e_audio, e_text, torch.tensor(1.0))
    assert math.isclose(float(got), 0.5 * (l_text + l_audio), rel_tol=1e-6)
    # τ scales the logits: with τ = 2 the same pairs give a different value
    assert not math.isclose(float(clip_loss(e_audio, e_text, torch.tensor(2.0))), float(got))


def test_clip_loss_is_symmetric_and_near_zero_for_confident_matches():
    e = torch.eye(4)
    assert float(clip_loss(e, e, torch.tensor(100.0))) < 1e-6
    a, t = torch.randn(5, 8), torch.randn(5, 8)
    assert math.isclose(
        float(clip_loss(a, t, torch.tensor(1.0))),
        float(clip_loss(t, a, torch.tensor(1.0))),
        rel_tol=1e-6,
    )


def test_distinct_labels_reduce_to_the_diagonal_targets():
    a, t = torch.randn(4, 6), torch.randn(4, 6)
    plain = clip_loss(a, t, torch.tensor(3.0))
    labelled = clip_loss(a, t, torch.tensor(3.0), labels=torch.tensor([5, 1, 2, 0]))
    assert math.isclose(float(plain), float(labelled), rel_tol=1e-6)


def test_same_class_pairs_are_not_negatives():
    # Two clips of one class share one text: class-aware targets split each of their rows
    # evenly over both, so a model that keeps them together is not pushed to separate them.
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = clip_loss(e, e, torch.tensor(50.0), labels=torch.tensor([0, 0, 1]))
    # rows 0/1: target ½,½ over two equal logits → −log ½ each; row 2 → ~0
    assert math.isclose(float(loss), 2 * math.log(2) / 3, rel_tol=1e-4)


def test_trains_on_seen_classes_and_transfers(problem):
    method = Contrastive(features=("feat",), dim=16, dropout=0.0, epochs=40, lr=1e-2, batch_size=32)
    log = method.fit(problem.train, problem.train_classes, problem.dev, problem.dev_classes, 0)
    assert 1 <= log["best_epoch"] <= 40 and log["logit_scale"] > 0
    ua = unweighted_accuracy(
        problem.test.labels, method.predict(problem.test, problem.test_classes)
    )
    assert ua > 0.5  # 8 unseen classes: chance is 0.125


def test_is_deterministic_and_class_order_invariant(problem):
    def trained():
        m = Contrastive(features=("feat",), dim=16, epochs=5, lr=1e-2)
        m.fit(problem.train, problem.train_classes, problem.dev, problem.dev_classes, 3)
        return m

    a, b = trained(), trained()
    np.testing.assert_array_equal(
        a.score(problem.test, problem.test_classes), b.score(problem.test, problem.test_classes)
    )
    shuffled = permuted(problem.test_classes)
    assert a.predict(problem.test, problem.test_classes) == a.predict(problem.test, shuffled)


def test_embed_gives_unit_audio_rows_and_narration_text_rows(problem):
    from .conftest import with_features

    method = Contrastive(features=("feat",), dim=8, epochs=2, lr=1e-2)
    method.fit(problem.train, problem.train_classes, None, None, 0)
    emb = method.embed(problem.test)
    assert set(emb) == {"audio"} and emb["audio"].shape == (len(problem.test), 8)
    np.testing.assert_allclose(np.linalg.norm(emb["audio"], axis=1), 1.0, rtol=1e-5)
    # the audio rows are those score() compares with the class rows
    text = method.model.embed_text(torch.from_numpy(problem.test_classes.embeddings)).detach()
    scores = method.score(problem.test, problem.test_classes)
    np.testing.assert_allclose(
        scores,
        float(method.model.logit_scale().detach()) * emb["audio"] @ text.numpy().T,
        rtol=1e-4,
        atol=1e-5,
    )
    rows = [problem.test_classes.names.index(y) for y in problem.test.labels]
    narrated = with_features(problem.test, narration=problem.test_classes.embeddings[rows])
    both = method.embed(narrated)
    np.testing.assert_allclose(both["text"], text.numpy()[rows], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(both["audio"], emb["audio"])
