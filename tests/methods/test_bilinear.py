"""DeViSE, ALE and SJE: the bilinear baselines of the AV-GZSL papers."""

from __future__ import annotations

import pytest
import torch

from harken.methods.base import get_method
from harken.methods.bilinear import devise_loss, sje_loss
from harken.metrics.classification import unweighted_accuracy


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_devise_loss_matches_a_hand_computation():
    # y = 0, Δ = 0.1: max(0, 0.1−2+1.5) = 0, max(0, 0.1−2+2.5) = 0.6, max(0, 0.1−2+0) = 0
    assert float(devise_loss(_t([[2.0, 1.5, 2.5, 0.0]]), torch.tensor([0]))) == pytest.approx(0.6)
    # every violation counts: y = 1, scores 1, 0, 1 → 2 × (0.1 + 1) = 2.2
    assert float(devise_loss(_t([[1.0, 0.0, 1.0]]), torch.tensor([1]))) == pytest.approx(2.2)


def test_sje_loss_is_the_most_violating_class_only():
    # y = 0, Δ = 1: max over c≠y of (1 + F) = 1 + 2.5 = 3.5; loss = 3.5 − 2 = 1.5
    assert float(sje_loss(_t([[2.0, 1.5, 2.5, 0.0]]), torch.tensor([0]))) == pytest.approx(1.5)
    # the true class wins by more than Δ → 0
    assert float(sje_loss(_t([[5.0, 1.5, 2.5]]), torch.tensor([0]))) == 0.0
    # batch mean
    scores, y = _t([[2.0, 1.5, 2.5, 0.0], [5.0, 1.5, 2.5, 0.0]]), torch.tensor([0, 0])
    assert float(sje_loss(scores, y)) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("name", "loss", "margin"),
    [("devise", "devise", 0.1), ("ale", "ranking", 1.0), ("sje", "sje", 1.0)],
)
def test_registered_with_their_papers_loss(name, loss, margin):
    method = get_method(name, features=("feat",))
    assert method.name == name
    assert method.config()["loss"] == loss and method.config()["margin"] == margin


@pytest.mark.parametrize("name", ["devise", "ale", "sje"])
def test_learns_and_transfers_on_a_synthetic_problem(name, problem):
    method = get_method(name, features=("feat",), epochs=8, lr=1e-2)
    method.fit(problem.train, problem.train_classes, problem.dev, problem.dev_classes)
    pred = method.predict(problem.test, problem.test_classes)
    assert unweighted_accuracy(problem.test.labels, pred) > 0.4  # 8 unseen classes: chance 0.125
