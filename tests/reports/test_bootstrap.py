"""Bootstrap intervals over clips and the GZSL γ curve, on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from harken.metrics.bootstrap import (
    bootstrap_ci,
    seen_unseen,
    unweighted_accuracy,
    weighted_accuracy,
)
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
