"""The linear projection of Gebhard et al. (2024) §3.1 and its rank-weighted hinge loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harken.methods.base import Batch, Classes
from harken.methods.linear import LinearProjection, rank_weights, ranking_hinge_loss
from harken.metrics.classification import unweighted_accuracy

from .conftest import make_problem, permuted


def _loss(scores, y, margin=1.0) -> float:
    return float(ranking_hinge_loss(torch.tensor([scores]), torch.tensor([y]), margin))


# --- the loss ----------------------------------------------------------------------------


def test_loss_is_zero_when_the_true_class_wins_by_the_margin():
    assert _loss([3.0, 1.0, 2.0, -5.0], 0) == 0.0  # beats the runner-up by exactly Δ = 1
    assert _loss([0.0, 5.0, 0.0], 1, margin=5.0) == 0.0
    assert _loss([3.0, 1.0, 2.5], 0) > 0.0  # 3.0 − 2.5 < Δ
    assert _loss([0.0, 1.0], 0) > 0.0


def test_loss_matches_a_hand_computation():
    # y = 0, Δ = 1: violations 1+1.5−2 = 0.5, 1+0−2 < 0 → 0, 1+2.5−2 = 1.5 ⇒ r = 2,
    # β_2 = 1 + 1/2, weight β_2 / r = 0.75, loss = 0.75 × (0.5 + 1.5) = 1.5
    assert _loss([2.0, 1.5, 0.0, 2.5], 0) == pytest.approx(1.5)
    # r = 3: violations 1, 2, 3, β_3 = 11/6, loss = 11/18 × 6
    assert _loss([0.0, 0.0, 1.0, 2.0], 0) == pytest.approx(11 / 18 * 6)
    # r = 1: weight 1
    assert _loss([0.0, 0.5, -3.0], 0) == pytest.approx(1.5)


def test_rank_weights():
    r = torch.tensor([0, 1, 2, 3, 4])
    expected = [0.0, 1.0, 1.5 / 2, (11 / 6) / 3, (25 / 12) / 4]
    assert rank_weights(r).tolist() == pytest.approx(expected)


def test_loss_grows_with_the_number_of_classes_ranked_above_the_true_class():
    # every violating class violates by 2 (= Δ + 1 − 0), so the loss is β_r/r × 2r = 2 β_r:
    # 2 × 1, 2 × 3/2, 2 × 11/6. An unweighted hinge would give 2, 4, 6 and a mean over the
    # violations 2, 2, 2 — only the rank weighting gives these values.
    one_above = _loss([0.0, 1.0, -5.0, -5.0], 0)
    two_above = _loss([0.0, 1.0, 1.0, -5.0], 0)
    three_above = _loss([0.0, 1.0, 1.0, 1.0], 0)
    assert one_above == pytest.approx(2.0)
    assert two_above == pytest.approx(3.0)
    assert three_above == pytest.approx(11 / 3)


def test_rank_weighting_differs_from_an_unweighted_hinge():
    # y = 0, Δ = 1, violations 0.5, 1.5, 3.0 (r = 3): unweighted 5.0, rank-weighted
    # β_3 / 3 × 5.0 = 11/18 × 5.0
    scores = [1.0, 0.5, 1.5, 3.0]
    assert _loss(scores, 0) == pytest.approx(11 / 18 * 5.0)
    assert _loss(scores, 0) != pytest.approx(5.0)


def test_loss_is_a_batch_mean():
    scores = torch.tensor([[2.0, 1.5, 0.0, 2.5], [3.0, 1.0, 2.0, -5.0]])
    assert float(ranking_hinge_loss(scores, torch.tensor([0, 0]))) == pytest.approx(0.75)


def test_a_gradient_step_raises_the_true_class_relative_to_the_others():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    emb = torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model = torch.nn.Linear(5, 3, bias=False)

    def gap() -> torch.Tensor:
        scores = model(x) @ emb.T
        true = scores.gather(1, y[:, None])[:, 0]
        others = scores.scatter(1, y[:, None], -torch.inf).max(dim=1).values
        return (true - others).detach()

    before = gap()
    loss = ranking_hinge_loss(model(x) @ emb.T, y)
    assert loss.item() > 0
    loss.backward()
    with torch.no_grad():
        model.weight -= 0.01 * model.weight.grad
    after = gap()
    assert (after > before).float().mean() >= 0.75
    assert float((after - before).mean()) > 0
    assert ranking_hinge_loss(model(x) @ emb.T, y).item() < loss.item()


# --- the method --------------------------------------------------------------------------


def _linear(loss: str = "ranking", epochs: int = 12) -> LinearProjection:
    return LinearProjection(features=("feat",), loss=loss, epochs=epochs, lr=1e-2)


@pytest.fixture(scope="module")
def fitted(problem):
    model = _linear()
    log = model.fit(problem.train, problem.train_classes, problem.dev, problem.dev_classes, seed=0)
    return model, log


def _ua(model, batch: Batch, classes: Classes) -> float:
    return unweighted_accuracy(batch.labels, model.predict(batch, classes))


def test_learns_seen_classes_and_generalises_to_unseen_ones(fitted, problem):
    model, _ = fitted
    assert _ua(model, problem.train, problem.train_classes) > 0.8
    # 8 unseen classes, chance 0.125: the linear relation transfers
    assert _ua(model, problem.test, problem.test_classes) > 0.6


def test_fit_log_reports_the_best_dev_epoch(fitted, problem):
    model, log = fitted
    assert 1 <= log["best_epoch"] <= 12
    assert 0.0 <= log["dev_score"] <= 1.0
    assert log["dev_score"] == pytest.approx(_ua(model, problem.dev, problem.dev_classes))


def test_fit_without_dev_keeps_the_last_epoch(problem):
    log = _linear(epochs=3).fit(problem.train, problem.train_classes, None, None)
    assert log == {"best_epoch": 3, "dev_score": None, "lr_drops": []}


def test_a_protocol_criterion_replaces_dev_ua(problem):
    method = _linear(epochs=4)
    seen = []

    def criterion(scores, labels, names):
        seen.append((scores.shape, tuple(names)))
        return -len(seen)  # strictly worse every epoch: the first epoch must be kept

    method.criterion = criterion
    log = method.fit(problem.train, problem.train_classes, problem.dev, problem.dev_classes)
    assert log["best_epoch"] == 1 and log["dev_score"] == -1
    assert (
        seen
        == [((len(problem.dev), len(problem.dev_classes.names)), tuple(problem.dev_classes.names))]
        * 4
    )


def test_replay_trains_the_logged_epochs_with_the_logged_lr_drops(problem):
    method = _linear(epochs=30)
    method.replay({"best_epoch": 5, "lr_drops": [2, 7]})
    assert method.train_config.epochs == 5 and method.train_config.lr_drops == (2,)
    log = method.fit(problem.train, problem.train_classes, None, None)
    assert log["best_epoch"] == 5 and log["lr_drops"] == [2]


def test_standardisation_uses_training_clips_only(fitted, problem):
    model, _ = fitted
    train_x = problem.train.features["feat"]
    np.testing.assert_allclose(model._mean, train_x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(model._std, train_x.std(axis=0) + 1e-6, rtol=1e-6)
    mean, std = model._mean.copy(), model._std.copy()
    model.score(problem.dev, problem.dev_classes)
    model.score(problem.test, problem.test_classes)
    np.testing.assert_array_equal(model._mean, mean)
    np.testing.assert_array_equal(model._std, std)


def test_candidate_order_changes_no_prediction(fitted, problem):
    model, _ = fitted
    for seed in range(3):
        shuffled = permuted(problem.test_classes, seed)
        assert model.predict(problem.test, shuffled) == model.predict(
            problem.test, problem.test_classes
        )
        index = [problem.test_classes.names.index(n) for n in shuffled.names]
        np.testing.assert_allclose(
            model.score(problem.test, shuffled),
            model.score(problem.test, problem.test_classes)[:, index],
            rtol=1e-5,
        )


def test_training_class_order_changes_no_prediction(problem):
    a = _linear(epochs=4)
    a.fit(problem.train, problem.train_classes, None, None, seed=0)
    b = _linear(epochs=4)
    b.fit(problem.train, permuted(problem.train_classes, 2), None, None, seed=0)
    np.testing.assert_allclose(a.state()["weight"], b.state()["weight"], atol=1e-4)
    assert a.predict(problem.test, problem.test_classes) == b.predict(
        problem.test, problem.test_classes
    )


def test_fit_is_deterministic_for_a_seed(problem):
    weights = []
    for seed in (0, 0, 1):
        m = _linear(epochs=2)
        m.fit(problem.train, problem.train_classes, None, None, seed=seed)
        weights.append(m.state()["weight"])
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], weights[2])


def test_cross_entropy_option_learns_too():
    p = make_problem(seed=3)
    # this torch build's CPU cross-entropy is slow per call: few, large batches
    model = LinearProjection(features=("feat",), loss="ce", epochs=6, lr=3e-2, batch_size=64)
    log = model.fit(p.train, p.train_classes, p.dev, p.dev_classes, seed=0)
    assert model.config()["loss"] == "ce"
    assert 1 <= log["best_epoch"] <= 6
    assert _ua(model, p.train, p.train_classes) > 0.8
    assert _ua(model, p.test, p.test_classes) > 0.6


def test_score_before_fit_raises(problem):
    with pytest.raises(RuntimeError, match="fit"):
        _linear().score(problem.test, problem.test_classes)
