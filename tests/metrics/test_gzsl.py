"""S / U / HM / ZSL and calibrated stacking against hand computations."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from harken.metrics.gzsl import (
    DEFAULT_GRID,
    calibrated_stacking,
    gzsl_report,
    harmonic_mean,
    per_class_accuracy,
    select_calibration,
)

NAMES = ["s1", "s2", "u1", "u2"]
SEEN = ["s1", "s2"]
LABELS = ["s1", "s1", "s2", "u1", "u1", "u2"]
# columns s1 s2 u1 u2
SCORES = np.array(
    [
        [2.0, 0.0, 1.0, 0.0],  # s1 → s1 ✓
        [1.0, 0.0, 1.5, 0.0],  # s1 → u1 ✗
        [0.0, 3.0, 0.0, 0.0],  # s2 → s2 ✓
        [1.0, 0.0, 0.5, 0.0],  # u1 → s1 ✗ (u1 beats u2 in ZSL ✓)
        [0.0, 0.0, 2.0, 1.0],  # u1 → u1 ✓
        [0.0, 1.2, 0.0, 1.0],  # u2 → s2 ✗ (ZSL ✓)
    ]
)


def test_report_against_a_hand_computation():
    r = gzsl_report(SCORES, LABELS, NAMES, SEEN)
    # S: s1 ½, s2 1 → ¾; U: u1 ½, u2 0 → ¼; HM = 2·¾·¼/1 = 0.375; ZSL: u1 1, u2 1 → 1
    assert r == pytest.approx({"S": 0.75, "U": 0.25, "HM": 0.375, "ZSL": 1.0})


def test_calibration_moves_predictions_to_unseen_classes():
    # γ = 0.6: row 3 → u1 (1−.6 < .5), row 5 → u2 (1.2−.6 < 1); row 0 stays s1 (1.4 > 1)
    r = gzsl_report(SCORES, LABELS, NAMES, SEEN, gamma=0.6)
    assert r == pytest.approx({"S": 0.75, "U": 1.0, "HM": 2 * 0.75 / 1.75, "ZSL": 1.0})
    np.testing.assert_allclose(
        calibrated_stacking([[1.0, 1.0]], np.array([True, False]), 0.5), [[0.5, 1.0]]
    )


def test_hm_and_per_class_accuracy():
    assert harmonic_mean(0.0, 0.0) == 0.0 and harmonic_mean(0.5, 0.5) == 0.5
    assert per_class_accuracy(["a", "a", "b"], ["a", "b", "b"], ["a", "b"]) == 0.75
    with pytest.raises(ValueError, match="none of the given classes"):
        per_class_accuracy(["a"], ["a"], ["z"])


def test_calibration_is_chosen_from_validation_arrays_only():
    gamma, hm = select_calibration(SCORES, LABELS, NAMES, SEEN)
    assert 0.5 <= gamma <= 1.0 and hm == pytest.approx(2 * 0.75 / 1.75)
    assert len(DEFAULT_GRID) == 76 and DEFAULT_GRID[0] == 0.0 and DEFAULT_GRID[-1] == 5.0
    # the search takes validation scores and labels, and nothing that could carry test data
    params = list(inspect.signature(select_calibration).parameters)
    assert params == ["val_scores", "val_labels", "class_names", "seen_classes", "grid"]


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="not among the class names"):
        gzsl_report(SCORES[:1], ["zz"], NAMES, SEEN)


def test_fast_calibration_search_equals_the_report_at_every_grid_value():
    rng = np.random.default_rng(7)
    names = [f"c{i}" for i in range(6)]
    labels = [names[i] for i in rng.integers(0, 6, size=60)]
    scores = rng.normal(size=(60, 6))
    seen = names[:4]
    grid = tuple(np.linspace(0, 2, 41))
    gamma, hm = select_calibration(scores, labels, names, seen, grid)
    by_report = [gzsl_report(scores, labels, names, seen, g)["HM"] for g in grid]
    assert hm == pytest.approx(max(by_report))
    assert gamma == pytest.approx(grid[int(np.argmax(by_report))])
