import csv

import numpy as np
import pytest

from harken.errors import ConfigError, DataError
from harken.methods.probe import LinearProbe, choose_c
from harken.metrics.probe import probe_chance, probe_report


def _blobs(n_per_class, centres, seed, dim=4, spread=1.0):
    """Gaussian clusters: class ``k`` around ``centres[k]`` on the first axis."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for label, (centre, n) in enumerate(zip(centres, n_per_class, strict=True)):
        pts = rng.normal(scale=spread, size=(n, dim))
        pts[:, 0] += centre
        x.append(pts)
        y += [label] * n
    return np.concatenate(x), y


def test_choose_c_orders_by_top1_then_mca_then_smaller_c():
    r = [
        {"C": 10.0, "top1": 0.8, "mca": 0.5},
        {"C": 1.0, "top1": 0.8, "mca": 0.6},
        {"C": 0.1, "top1": 0.7, "mca": 0.9},
        {"C": 100.0, "top1": 0.8, "mca": 0.6},
    ]
    assert choose_c(r) == 1.0
    assert choose_c(r[:1] + r[2:3]) == 10.0
    with pytest.raises(ConfigError):
        choose_c([])


def test_c_is_chosen_on_validation_even_where_test_prefers_another():
    # Train: 70 of class 0 left, 30 of class 1 right. Validation: every clip labelled 0,
    # half of them from the right — only a probe that ignores the features (tiny C: the
    # intercept alone, i.e. the majority class) is right on all of them. Test: honest labels,
    # where the feature-using large C is far better.
    x_tr, y_tr = _blobs([70, 30], [-2.0, 2.0], seed=0)
    x_va, _ = _blobs([20, 20], [-2.0, 2.0], seed=1)
    y_va = [0] * 40
    x_te, y_te = _blobs([50, 50], [-2.0, 2.0], seed=2)
    grid = [1e-4, 100.0]
    probe = LinearProbe(grid=grid)
    log = probe.fit(x_tr, y_tr, x_va, y_va)
    by_c = {r["C"]: r for r in log["grid"]}
    assert by_c[1e-4]["top1"] == 1.0 and by_c[100.0]["top1"] < 0.75
    assert log["C"] == probe.C_ == 1e-4 == choose_c(log["grid"])
    test_top1 = {}
    for c in grid:
        single = LinearProbe(grid=[c], refit_on_train_val=False)
        single.fit(x_tr, y_tr, x_va, y_va)
        test_top1[c] = probe_report(single.scores(x_te), y_te, single.classes_)["top1"]
    assert max(test_top1, key=test_top1.get) == 100.0 != log["C"]
    assert test_top1[100.0] > 0.9 and test_top1[1e-4] == 0.5


def test_scores_are_probabilities_in_classes_order():
    names = ["wash", "cut", "pour"]
    x_tr, y_tr = _blobs([30, 30, 30], [-6.0, 0.0, 6.0], seed=3)
    x_va, y_va = _blobs([10, 10, 10], [-6.0, 0.0, 6.0], seed=4)
    x_te, y_te = _blobs([10, 10, 10], [-6.0, 0.0, 6.0], seed=5)
    probe = LinearProbe(grid=[0.1, 1.0])
    log = probe.fit(x_tr, [names[k] for k in y_tr], x_va, [names[k] for k in y_va])
    assert probe.classes_ == log["classes"] == ["cut", "pour", "wash"]
    p = probe.scores(x_te)
    assert p.shape == (30, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    predicted = [probe.classes_[k] for k in p.argmax(axis=1)]
    assert np.mean([a == names[b] for a, b in zip(predicted, y_te, strict=True)]) > 0.95
    assert log["refit_on"] == "train+val" and (log["n_train"], log["n_val"]) == (90, 30)
    assert all(r["converged"] for r in log["grid"]) and log["converged"]


def test_standardisation_makes_scores_invariant_to_feature_scale_and_offset():
    x_tr, y_tr = _blobs([40, 40], [-1.0, 1.0], seed=6)
    x_va, y_va = _blobs([15, 15], [-1.0, 1.0], seed=7)
    x_te, _ = _blobs([15, 15], [-1.0, 1.0], seed=8)
    scale, shift = np.array([1e3, 1e-3, 5.0, 1.0]), np.array([50.0, -3.0, 0.0, 7.0])
    a, b = LinearProbe(grid=[0.05, 1.0]), LinearProbe(grid=[0.05, 1.0])
    a.fit(x_tr, y_tr, x_va, y_va)
    b.fit(x_tr * scale + shift, y_tr, x_va * scale + shift, y_va)
    np.testing.assert_allclose(a.scores(x_te), b.scores(x_te * scale + shift), atol=1e-5)


def test_refit_option_and_determinism():
    x_tr, y_tr = _blobs([30, 30], [-1.0, 1.0], seed=9)
    x_va, y_va = _blobs([20, 20], [-0.5, 1.5], seed=10)
    x_va2, y_va2 = _blobs([20, 20], [-3.0, 3.0], seed=11)
    x_te, _ = _blobs([10, 10], [-1.0, 1.0], seed=12)

    def fitted(refit, xv, yv):
        p = LinearProbe(grid=[1.0], refit_on_train_val=refit)
        p.fit(x_tr, y_tr, xv, yv)
        return p.scores(x_te)

    # Train only: the validation data chooses C, nothing else.
    np.testing.assert_array_equal(fitted(False, x_va, y_va), fitted(False, x_va2, y_va2))
    # Train + val: it is part of the fit.
    assert not np.allclose(fitted(True, x_va, y_va), fitted(True, x_va2, y_va2))
    np.testing.assert_array_equal(fitted(True, x_va, y_va), fitted(True, x_va, y_va))


def test_bad_inputs_are_refused():
    x, y = _blobs([10, 10], [-1.0, 1.0], seed=13)
    with pytest.raises(DataError, match="val row 3: label 7"):
        LinearProbe().fit(x, y, x[:5], [0, 1, 0, 7, 1])
    with pytest.raises(DataError, match="one row per label"):
        LinearProbe().fit(x, y[:-1], x, y)
    with pytest.raises(DataError, match="1 class"):
        LinearProbe().fit(x, [0] * 20, x, [0] * 20)
    with pytest.raises(ConfigError, match="positive C"):
        LinearProbe(grid=[0.0, 1.0])
    with pytest.raises(ConfigError, match="fit"):
        LinearProbe().scores(x)
    probe = LinearProbe(grid=[1.0])
    probe.fit(x, y, x, y)
    with pytest.raises(DataError, match=r"\[N, 4\]"):
        probe.scores(x[:, :3])


@pytest.mark.slow
def test_real_kitchen20_yamnet_probe_beats_chance(shared_data):
    """200 Kitchen20 clips (every 5th row), YAMNet embeddings, split by the dataset's folds
    (1-3 train, 4 validation, 5-9 test: the takes of one source clip share a fold)."""
    from harken import api

    root = shared_data / "kitchen20"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[::5][:200]
    emb = api.embed([str(root / r["path"]) for r in rows], encoder="yamnet")  # ≈ 10 s, 2 cores
    assert not emb.skipped and emb.embeddings.shape[0] == 200
    x = np.asarray(emb.embeddings)
    fold = np.array([int(r["fold"]) for r in rows])
    label = [r["label"] for r in rows]
    tr, va = fold <= 3, fold == 4
    train_classes = {label[i] for i in np.flatnonzero(tr)}
    te = (fold >= 5) & np.array([c in train_classes for c in label])
    pick = lambda mask: (x[mask], [label[i] for i in np.flatnonzero(mask)])  # noqa: E731
    probe = LinearProbe()
    log = probe.fit(*pick(tr), *pick(va))
    assert log["C"] in probe.grid
    x_te, y_te = pick(te)
    r = probe_report(probe.scores(x_te), y_te, probe.classes_)
    chance = probe_chance(pick(tr)[1], y_te, probe.classes_)
    # Measured: Top-1 0.56, mAUC 0.91, mAP 0.54; chance 0.04, 0.5, 0.06 (73 test clips).
    assert r["top1"] > 0.4 > 5 * chance["top1"]
    assert r["mauc"] > 0.8 and r["map"] > 3 * chance["map"]
