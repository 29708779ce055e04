"""The shared training loop: seeding and restoring the best dev state."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from harken.train import TrainConfig, fit, seeded, torch_threads


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 5, generator=g)
    return x, (x[:, 0] > 0).long()


def _model() -> torch.nn.Linear:
    torch.manual_seed(123)  # same initial weights in every call
    return torch.nn.Linear(5, 2)


def _ce(model, xb, yb):
    return torch.nn.functional.cross_entropy(model(xb), yb)


def _mse(model, xb, yb):
    return ((model(xb)[:, 1] - yb.float()) ** 2).mean()


CONFIG = TrainConfig(epochs=4, lr=0.05, batch_size=8)


def _train(seed: int, evaluate=None):
    model = _model()
    x, y = _data()
    log = fit(model, _mse, x, y, CONFIG, seed, evaluate)
    return model, log


def test_paper_defaults():
    assert TrainConfig() == TrainConfig(epochs=30, lr=1e-4, batch_size=16, weight_decay=0.0)


def test_same_seed_gives_identical_weights_and_another_seed_differs():
    a, log_a = _train(seed=7)
    b, log_b = _train(seed=7)
    c, _ = _train(seed=8)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
    assert log_a["loss_curve"] == log_b["loss_curve"]
    # same initial weights, different batch order
    assert not torch.equal(a.weight, c.weight)


def test_training_reduces_the_loss():
    model = _model()
    x, y = _data()
    log = fit(model, _ce, x, y, TrainConfig(epochs=3, lr=0.05, batch_size=40), 0)
    assert len(log["loss_curve"]) == 3
    assert log["loss_curve"][-1] < log["loss_curve"][0]


def test_best_dev_state_is_restored():
    snapshots: list[dict] = []
    curve = [0.2, 0.9, 0.5, 0.7]  # peaks at epoch 2

    def evaluate(model) -> float:
        assert not model.training and not torch.is_grad_enabled()
        snapshots.append(copy.deepcopy(model.state_dict()))
        return curve[len(snapshots) - 1]

    model, log = _train(seed=0, evaluate=evaluate)
    assert len(snapshots) == 4
    assert log["best_epoch"] == 2
    assert log["best_dev"] == pytest.approx(0.9)
    assert log["dev_curve"] == curve
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[1][name])
    assert not torch.equal(model.weight, snapshots[3]["weight"])
    assert not model.training


def test_ties_keep_the_earliest_best_epoch():
    scores = iter([0.5, 0.5, 0.4, 0.5])
    _, log = _train(seed=0, evaluate=lambda model: next(scores))
    assert log["best_epoch"] == 1


def test_without_dev_the_last_epoch_is_kept():
    model, log = _train(seed=0)
    assert log["best_epoch"] == 4 and log["best_dev"] is None and log["dev_curve"] == []
    # same as training with a dev score that rises every epoch
    scores = iter([0.1, 0.2, 0.3, 0.4])
    with_dev, _ = _train(seed=0, evaluate=lambda m: next(scores))
    assert torch.equal(model.weight, with_dev.weight)


def test_seeded_block_is_reproducible_and_restores_the_callers_generator():
    torch.manual_seed(99)
    expected_next = torch.rand(3)
    torch.manual_seed(99)
    with seeded(3) as gen:
        first = torch.rand(2), torch.randperm(10, generator=gen)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's sequence continues
    with seeded(3) as gen:
        assert torch.equal(first[0], torch.rand(2))
        assert torch.equal(first[1], torch.randperm(10, generator=gen))


def _global_state():
    return (
        torch.get_num_threads(),
        torch.random.get_rng_state(),
        np.random.get_state(),
        random.getstate(),
    )


def _assert_same_state(before, after):
    assert after[0] == before[0]
    assert torch.equal(after[1], before[1])
    assert after[2][0] == before[2][0] and np.array_equal(after[2][1], before[2][1])
    assert after[2][2:] == before[2][2:]
    assert after[3] == before[3]


def _dropout_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2))


def test_fit_leaves_threads_and_every_global_generator_as_it_found_them():
    torch.manual_seed(2024)
    np.random.seed(7)
    random.seed(11)
    # a thread count fit would change (it trains small heads on one thread)
    model, (x, y) = _dropout_model(), _data()
    with torch_threads(2):
        before = _global_state()
        fit(model, _ce, x, y, TrainConfig(epochs=2, lr=0.05, batch_size=8), 5)
        _assert_same_state(before, _global_state())


def test_fit_with_dropout_is_reproducible_whatever_the_callers_generator_state():
    def train(caller_seed: int) -> torch.nn.Module:
        torch.manual_seed(0)
        model = _dropout_model()
        torch.manual_seed(caller_seed)  # the caller's state must not matter
        x, y = _data()
        fit(model, _ce, x, y, TrainConfig(epochs=2, lr=0.05, batch_size=8), 5)
        return model

    a, b = train(1), train(2)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])


def test_thread_count_is_restored_when_training_fails():
    def broken_loss(model, xb, yb):
        raise ValueError("boom")

    model, (x, y) = _model(), _data()
    with torch_threads(2):
        before = _global_state()
        with pytest.raises(ValueError, match="boom"):
            fit(model, broken_loss, x, y, CONFIG, 0)
        _assert_same_state(before, _global_state())


def _lr_log(model_fit_config, scores):
    """Run ``fit`` with a scripted dev score sequence; returns the log."""
    it = iter(scores)
    model = _model()
    x, y = _data()
    return fit(model, _mse, x, y, model_fit_config, 0, lambda m: next(it))


def test_plateau_reduces_the_learning_rate_after_patience_stale_epochs():
    config = TrainConfig(epochs=8, lr=0.05, batch_size=8, plateau_patience=3)
    # best at epoch 2; epochs 3, 4, 5 do not improve → drop after epoch 5; 6, 7, 8 stale again
    log = _lr_log(config, [0.1, 0.5, 0.4, 0.4, 0.3, 0.2, 0.2, 0.2])
    assert log["lr_drops"] == [5]
    assert log["best_epoch"] == 2


def test_replayed_schedule_drops_at_the_same_epochs_without_dev_data():
    config = TrainConfig(epochs=8, lr=0.05, batch_size=8, plateau_patience=3)
    replay = config.replay({"best_epoch": 6, "lr_drops": [5]})
    assert (replay.epochs, replay.lr_drops, replay.plateau_patience) == (6, (5,), None)
    model, x, y = _model(), *_data()
    log = fit(model, _mse, x, y, replay, 0)
    assert log["lr_drops"] == [5] and log["best_epoch"] == 6


def test_a_trailing_batch_of_one_clip_is_skipped_for_batch_norm():
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)
    )
    x, y = _data()  # 40 clips, batch 13 → 13, 13, 13, 1
    fit(model, _mse, x, y, TrainConfig(epochs=1, lr=0.01, batch_size=13), 0)
