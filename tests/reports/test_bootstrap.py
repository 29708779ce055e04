"""Bootstrap intervals over clips (per-unit and paired) and the GZSL γ curve, on hand-checkable
cases and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harken.metrics.bootstrap import (
    average_precision,
    bootstrap_ci,
    mean_of,
    median,
    paired_bootstrap_ci,
    recall_at,
    resample,
    roc_auc,
    seen_unseen,
    unweighted_accuracy,
    weighted_accuracy,
)
from harken.metrics.discovery import discovery_report
from harken.metrics.gzsl import calibration_curve, gzsl_report

METRICS = {"UA": unweighted_accuracy, "WA": weighted_accuracy}


def test_point_values_are_the_metrics_on_the_clips_as_tested():
    y = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 1, 1])
    ci = bootstrap_ci([(y, p, METRICS)], n=200)
    assert ci["UA"]["value"] == pytest.approx((2 / 3 + 1) / 2)
    assert ci["WA"]["value"] == pytest.approx(3 / 4)
    assert 0 <= ci["WA"]["low"] <= ci["WA"]["value"] <= ci["WA"]["high"] <= 1


def test_perfect_predictions_have_a_zero_width_interval_and_seeds_repeat():
    y = np.arange(40) % 4
    ci = bootstrap_ci([(y, y, METRICS)], n=100)
    assert ci["UA"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    rng = np.random.default_rng(1)
    noisy = np.where(rng.random(40) < 0.3, (y + 1) % 4, y)
    a, b = bootstrap_ci([(y, noisy, METRICS)], seed=3), bootstrap_ci([(y, noisy, METRICS)], seed=3)
    assert a == b and a["WA"]["high"] - a["WA"]["low"] > 0.1


def test_units_are_averaged_like_the_run_mean():
    y = np.array([0, 1, 0, 1])
    ci = bootstrap_ci([(y, y, METRICS), (y, 1 - y, METRICS)], n=50)
    assert ci["WA"]["value"] == pytest.approx(0.5)


def test_seen_unseen_matches_gzsl_report():
    labels = ["a", "a", "b", "c", "c", "d"]
    names = ["a", "b", "c", "d"]
    scores = np.eye(4)[[0, 2, 1, 2, 0, 3]]
    want = gzsl_report(scores, labels, names, ["a", "b"], 0.0)
    y = np.array([names.index(c) for c in labels])
    p = scores.argmax(axis=1)
    ci = bootstrap_ci([(y, p, seen_unseen([0, 1]))], n=20)
    for k in ("S", "U", "HM"):
        assert ci[k]["value"] == pytest.approx(want[k])


def test_calibration_curve_is_gzsl_report_at_every_gamma():
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d", "e"]
    labels = [names[i] for i in rng.integers(0, 5, 60)]
    scores = rng.normal(size=(60, 5))
    grid = [0.0, 0.2, 0.5, 1.0, 2.0]
    curve = calibration_curve(scores, labels, names, ["a", "b", "c"], grid)
    assert curve["gamma"] == grid
    for i, g in enumerate(grid):
        want = gzsl_report(scores, labels, names, ["a", "b", "c"], g)
        for k in ("S", "U", "HM"):
            assert curve[k][i] == pytest.approx(want[k])
    # more γ moves clips from seen to unseen classes
    assert curve["S"][-1] <= curve["S"][0] and curve["U"][-1] >= curve["U"][0]


# --- paired bootstrap of per-clip columns (discovery, retrieval, linear probe) ----------------


def _auc_columns(rng, n: int, shift: float = 1.0) -> dict[str, np.ndarray]:
    y = np.arange(n) % 3 == 0  # a third sounding
    s = np.round(rng.normal(size=n) + shift * y, 1)  # rounded: ties included
    return {"y": y, "s": s}


AUC_METRICS = {
    "roc": lambda c: roc_auc(c["y"], c["s"]),
    "pr": lambda c: average_precision(c["y"], c["s"]),
}


def test_row_wise_aucs_are_scikit_learns_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random((40, 25)) < 0.4
    s = np.round(rng.normal(size=(40, 25)), 1)
    roc, ap = roc_auc(y, s), average_precision(y, s)
    for i in range(40):
        want = discovery_report(s[i], y[i])
        assert roc[i] == pytest.approx(want["roc_auc"], abs=1e-12)
        assert ap[i] == pytest.approx(want["pr_auc"], abs=1e-12)
    assert np.isnan(roc_auc(np.zeros((1, 4)), np.arange(4.0)[None]))[0]


def test_paired_interval_is_the_percentiles_of_a_direct_resampling_loop():
    rng = np.random.default_rng(1)
    units = [_auc_columns(rng, 60), _auc_columns(rng, 60)]
    units[1]["y"] = units[0]["y"]  # the same clips, two seeds' scores
    ci = paired_bootstrap_ci(units, AUC_METRICS, n=300, seed=4, strata=units[0]["y"])
    # the same draws, one resample at a time, through scikit-learn
    idx = resample(60, 300, np.random.default_rng(4), units[0]["y"])
    for name, fn in (("roc", roc_auc_score), ("pr", average_precision_score)):
        draws = [np.mean([fn(u["y"][i], u["s"][i]) for u in units]) for i in idx]
        assert ci[name]["low"] == pytest.approx(np.quantile(draws, 0.025))
        assert ci[name]["high"] == pytest.approx(np.quantile(draws, 0.975))
        direct = np.mean([fn(u["y"], u["s"]) for u in units])
        assert ci[name]["value"] == pytest.approx(direct)
        assert ci[name]["low"] <= ci[name]["value"] <= ci[name]["high"]


def test_stratified_resamples_keep_the_class_counts():
    strata = np.array([1, 0, 0, 1, 0, 0, 0])
    idx = resample(7, 50, np.random.default_rng(0), strata)
    assert idx.shape == (50, 7)
    assert (strata[idx].sum(axis=1) == 2).all()


def test_the_interval_shrinks_with_more_clips():
    rng = np.random.default_rng(2)
    small = _auc_columns(rng, 30, shift=0.8)
    large = {k: np.tile(v, 16) for k, v in small.items()}  # same AUC, 16 × the clips
    a = paired_bootstrap_ci([small], AUC_METRICS, strata=small["y"])
    b = paired_bootstrap_ci([large], AUC_METRICS, strata=large["y"])
    for m in AUC_METRICS:
        assert b[m]["value"] == pytest.approx(a[m]["value"])
        width_a, width_b = a[m]["high"] - a[m]["low"], b[m]["high"] - b[m]["low"]
        assert 0 < width_b < 0.4 * width_a  # ~1/√16 = 0.25 of the width


def test_pairing_applies_one_resample_to_every_seed():
    """Two seeds with identical outcomes give the one-seed interval (independent resampling
    per seed would average their noise and narrow it)."""
    ranks = {"rank": np.array([1, 3, 1, 7, 2, 1, 12, 4, 1, 2])}
    one = paired_bootstrap_ci([ranks], {"R@1": recall_at(1)}, n=500)
    two = paired_bootstrap_ci([ranks, dict(ranks)], {"R@1": recall_at(1)}, n=500)
    assert one == two
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap_ci([ranks, {"rank": ranks["rank"][:5]}], {"R@1": recall_at(1)})


def test_rank_metrics_on_a_hand_case():
    cols = {"rank": np.array([[1, 3, 11, 2]]), "ap": np.array([[1.0, 1 / 3, 0.0, 0.5]])}
    assert recall_at(1)(cols)[0] == 0.25
    assert recall_at(10)(cols)[0] == 0.75
    assert median("rank")(cols)[0] == 2.5
    assert mean_of("ap")(cols)[0] == pytest.approx((1 + 1 / 3 + 0.5) / 4)
