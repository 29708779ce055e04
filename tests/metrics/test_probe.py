import numpy as np
import pytest

from harken.errors import DataError
from harken.metrics.probe import probe_chance, probe_report

CLASSES = ["cut", "pour", "wash", "stir", "open", "close", "beep"]


def _case():
    # 4 clips, 7 classes; column order = CLASSES. "beep" never occurs in y_true.
    s = np.array(
        [
            [0.50, 0.10, 0.05, 0.04, 0.03, 0.02, 0.26],  # true cut: rank 1
            [0.40, 0.30, 0.10, 0.08, 0.06, 0.04, 0.02],  # true pour: rank 2
            [0.30, 0.20, 0.01, 0.15, 0.14, 0.13, 0.07],  # true wash: rank 7
            [0.05, 0.60, 0.10, 0.09, 0.08, 0.07, 0.01],  # true cut: rank 7
        ]
    )
    return s, ["cut", "pour", "wash", "cut"]


def test_topk_and_mean_class_accuracy_by_hand():
    s, y = _case()
    r = probe_report(s, y, CLASSES)
    assert r["top1"] == pytest.approx(1 / 4)
    assert r["top5"] == pytest.approx(2 / 4)  # ranks 1 and 2 are within 5; the 7s are not
    # Classes present: cut (1 of 2 right), pour (0 of 1), wash (0 of 1).
    assert r["mca"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert (r["n"], r["classes_present"], r["top5_k"]) == (4, 3, 5)


def test_map_and_mauc_average_over_present_classes_by_hand():
    s, y = _case()
    r = probe_report(s, y, CLASSES)
    # cut column: scores .50(+) .40 .30 .05(+) → hits at ranks 1 and 4: AP = (1 + 2/4)/2;
    #   AUC: + .50 beats both negatives, + .05 beats none → 2/4.
    # pour column: .60 .30(+) .20 .10 → AP = 1/2; AUC: beats 2 of 3.
    # wash column: .10 .10 .05 .01(+) → AP = 1/4; AUC: 0.
    assert r["map"] == pytest.approx(((1 + 2 / 4) / 2 + 1 / 2 + 1 / 4) / 3)
    assert r["mauc"] == pytest.approx((2 / 4 + 2 / 3 + 0) / 3)


def test_integer_labels_are_column_indices_without_classes():
    s, y = _case()
    ids = [CLASSES.index(c) for c in y]
    assert probe_report(s, ids) == probe_report(s, y, CLASSES)
    assert probe_report(s, np.array(ids)) == probe_report(s, y, CLASSES)


def test_top5_with_fewer_than_five_classes_is_top_c():
    s = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    r = probe_report(s, ["a", "a", "b"], ["a", "b"])
    assert r["top5_k"] == 2 and r["top5"] == 1.0
    assert r["top1"] == pytest.approx(2 / 3)


def test_ties_are_broken_by_column_order():
    s = np.full((2, 3), 0.5)
    r = probe_report(s, ["x", "y"], ["x", "y", "z"])
    assert r["top1"] == 0.5  # the tie goes to column 0


def test_bad_inputs_are_refused():
    s, y = _case()
    with pytest.raises(DataError, match="y_true row 1: label 'jump'"):
        probe_report(s, ["cut", "jump", "wash", "cut"], CLASSES)
    with pytest.raises(DataError, match="one row per label"):
        probe_report(s, y[:3], CLASSES)
    with pytest.raises(DataError, match="7 score columns"):
        probe_report(s, y, CLASSES[:6])
    with pytest.raises(DataError, match="two or more classes"):
        probe_report(s, ["cut"] * 4, CLASSES)
    with pytest.raises(DataError, match="row 2"):
        probe_report(np.where(np.arange(4)[:, None] == 2, np.nan, s), y, CLASSES)


def test_chance_predicts_by_the_training_prior():
    classes = ["a", "b", "c", "d", "e", "f", "g"]
    y_train = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] * 2 + ["f"] * 1
    y_test = ["a", "b", "g", "g", "f", "c", "a", "e"]
    r = probe_chance(y_train, y_test, classes)
    assert r["top1"] == pytest.approx(2 / 8)  # majority "a"
    # Five most frequent training classes: a, b, c, d, e (d/e tie: both in) → 5 of 8 test clips.
    assert r["top5"] == pytest.approx(5 / 8)
    present = {"a", "b", "g", "f", "c", "e"}
    assert r["mca"] == pytest.approx(1 / len(present))
    assert r["map"] == pytest.approx(1 / len(present))
    assert r["mauc"] == 0.5


def test_chance_without_majority_class_in_test():
    r = probe_chance(["a", "a", "b"], ["b", "c", "c"], ["a", "b", "c"])
    assert r["top1"] == 0.0 and r["mca"] == 0.0
    assert r["map"] == pytest.approx(0.5)  # (1/3 + 2/3) / 2
