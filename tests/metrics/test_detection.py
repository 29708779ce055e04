"""Event F1 and PSDS through sed_scores_eval on hand-built cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from harken.detection.segments import extract_segments
from harken.metrics.detection import best_thresholds, event_f1, macro_f1_at, psds, score_table

LABELS = ["x", "y"]
BOUNDS = np.arange(0.0, 21.0)  # twenty 1 s frames


def _scores(spans: dict[str, list[tuple[int, int, float]]]) -> np.ndarray:
    s = np.zeros((20, 2))
    for c, label in enumerate(LABELS):
        for a, b, v in spans.get(label, []):
            s[a:b, c] = v
    return s


EVENTS = {"rec": [(2.0, 5.0, "x"), (10.0, 12.0, "x"), (6.0, 8.0, "y")]}


def test_event_f1_counts_matches_within_the_collars():
    # x: one event found exactly, one missed, one false alarm → P = R = F1 = 1/2
    # y: found 0.1 s late at both ends (within the 200 ms collars) → F1 = 1
    s = _scores({"x": [(2, 5, 0.9), (15, 17, 0.9)]})
    bounds = BOUNDS.copy()
    s[6:8, 1] = 0.9
    bounds[6], bounds[8] = 6.1, 8.1
    got = event_f1({"rec": score_table(bounds, s, LABELS)}, EVENTS, 0.5)
    assert got["per_class"]["x"]["F1"] == pytest.approx(0.5)
    assert (got["per_class"]["x"]["tp"], got["per_class"]["x"]["fp"]) == (1, 1)
    assert got["per_class"]["y"]["F1"] == pytest.approx(1.0)
    assert got["F1"] == pytest.approx(0.75)  # macro
    assert got["F1_micro"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # 2 TP, 1 FP, 3 ref


def test_an_onset_outside_the_collar_is_no_match():
    s = _scores({"x": [(2, 5, 0.9), (10, 12, 0.9)], "y": [(6, 8, 0.9)]})
    bounds = BOUNDS.copy()
    bounds[2] = 2.5  # the first x detection starts 0.5 s late (> 200 ms)
    got = event_f1({"rec": score_table(bounds, s, LABELS)}, EVENTS, 0.5)
    assert got["per_class"]["x"]["tp"] == 1 and got["per_class"]["y"]["F1"] == 1.0


def test_metrics_count_the_segments_harken_emits():
    """sed_scores_eval's detections at θ are harken's segments (score > θ, adjacent merged)."""
    s = _scores({"x": [(2, 4, 0.6), (4, 5, 0.8), (15, 17, 0.55)], "y": [(6, 8, 0.7)]})
    for theta in (0.5, 0.58, 0.65, 0.75):
        segs = extract_segments("rec", BOUNDS, s, LABELS, {"x": theta, "y": theta})
        tp = sum(
            any(
                abs(g[0] - z.start) <= 0.2 and abs(g[1] - z.end) <= 0.2 and g[2] == z.label
                for z in segs
            )
            for g in EVENTS["rec"]
        )
        got = event_f1({"rec": score_table(BOUNDS, s, LABELS)}, EVENTS, theta)
        stats = got["per_class"]
        found = sum(stats[c]["tp"] + stats[c]["fp"] for c in LABELS)
        assert found == len(segs)
        assert stats["x"]["tp"] + stats["y"]["tp"] == tp


def test_psds_is_one_for_perfect_scores_and_lower_with_false_alarms():
    perfect = _scores({"x": [(2, 5, 0.9), (10, 12, 0.9)], "y": [(6, 8, 0.9)]})
    tables = {"rec": score_table(BOUNDS, perfect, LABELS)}
    assert psds(tables, EVENTS, {"rec": 20.0})["PSDS"] == pytest.approx(1.0)
    # a false alarm scored above the true events: at any threshold that finds them, one
    # false positive in 20 s = 180 per hour > max eFPR 100, so PSDS drops to 0 for x
    noisy = perfect.copy()
    noisy[15:17, 0] = 0.95
    got = psds({"rec": score_table(BOUNDS, noisy, LABELS)}, EVENTS, {"rec": 20.0})
    assert got["per_class"]["x"] == pytest.approx(0.0)
    assert got["per_class"]["y"] == pytest.approx(1.0)
    assert got["PSDS"] < 0.5  # mean minus the spread across classes (α_st = 1)


def test_best_thresholds_maximise_each_class_f1():
    # x events scored 0.9 and 0.7, a false alarm at 0.8, background 0:
    # θ ∈ [0.8, 0.9): F1 2/3; θ ∈ [0.7, 0.8): 1/2; θ ∈ [0, 0.7): P 2/3, R 1 → F1 0.8 (best);
    # θ < 0: everything one detection → 0. The threshold is halfway between 0.7 and 0.
    s = _scores({"x": [(2, 5, 0.9), (10, 12, 0.7), (15, 17, 0.8)], "y": [(6, 8, 0.4)]})
    got = best_thresholds({"rec": score_table(BOUNDS, s, LABELS)}, EVENTS)
    assert got["x"]["threshold"] == pytest.approx(0.35)
    assert got["x"]["F1"] == pytest.approx(0.8)
    assert got["y"]["threshold"] == pytest.approx(0.2) and got["y"]["F1"] == 1.0


def test_macro_f1_at_several_thresholds_equals_event_f1_at_each():
    s = _scores({"x": [(2, 5, 0.9), (10, 12, 0.7), (15, 17, 0.8)], "y": [(6, 8, 0.4)]})
    tables = {"rec": score_table(BOUNDS, s, LABELS)}
    thresholds = [-0.5, 0.2, 0.5, 0.75, 0.85, 0.95]
    expected = [event_f1(tables, EVENTS, t)["F1"] for t in thresholds]
    assert macro_f1_at(tables, EVENTS, thresholds) == pytest.approx(expected)
    # θ = 0.5: x finds both events and one false alarm (F1 0.8), y finds nothing (0)
    assert expected[2] == pytest.approx((0.8 + 0.0) / 2)


def test_importing_the_metrics_package_warns_nothing():
    """sed_scores_eval's dcase_util dependency warns about pkg_resources on import; a user of
    `harken bench detect` must not see a dependency's packaging warning."""
    import subprocess
    import sys

    probe = "from harken.metrics.detection import _sed_scores_eval; _sed_scores_eval()"
    done = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", probe], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "pkg_resources" not in done.stderr
