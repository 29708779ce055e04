import json

import numpy as np
import pytest

from harken.errors import DataError
from harken.metrics.discovery import discovery_curves, discovery_report


def _mann_whitney(scores, labels) -> float:
    """P(s_pos > s_neg) + ½ P(tie), over all pairs (independent of scikit-learn)."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = s[y][:, None], s[~y][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_perfect_separation_is_one():
    r = discovery_report([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
    assert r["roc_auc"] == 1.0 and r["pr_auc"] == 1.0


def test_reversed_scores_give_zero_roc():
    r = discovery_report([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    assert r["roc_auc"] == 0.0
    # Positives ranked 3rd and 4th: AP = ½ (1/3 + 2/4).
    assert r["pr_auc"] == pytest.approx(0.5 * (1 / 3 + 2 / 4))


def test_five_element_hand_case():
    # Ranked: + - + - +  → precision at the hits 1/1, 2/3, 3/5; AP = their mean.
    r = discovery_report([0.9, 0.8, 0.7, 0.6, 0.5], [True, False, True, False, True])
    assert r["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # Pairs (pos, neg) won: 2 + 1 + 0 of 6.
    assert r["roc_auc"] == pytest.approx(3 / 6)
    assert (r["n"], r["positives"], r["positive_rate"]) == (5, 3, 0.6)
    assert r["random"] == {"roc_auc": 0.5, "pr_auc": 0.6}


def test_ties_count_half_and_share_a_threshold():
    r = discovery_report([1.0, 0.5, 0.5, 0.0], [1, 1, 0, 0])
    assert r["roc_auc"] == pytest.approx(3.5 / 4)
    # Thresholds 1.0 (P 1, R ½) and 0.5 (P 2/3, R 1): step-wise area ½·1 + ½·2/3.
    assert r["pr_auc"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_constant_score_is_the_random_baseline():
    y = [1, 0, 0, 1, 0, 0, 0, 1]
    r = discovery_report(np.zeros(8), y)
    assert r["roc_auc"] == 0.5
    assert r["pr_auc"] == pytest.approx(3 / 8) == r["random"]["pr_auc"]


def test_roc_matches_pairwise_definition_not_swapped_arguments():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = rng.normal(size=300) + 0.8 * y  # informative: AUC well above ½
    r = discovery_report(s, y)
    assert r["roc_auc"] == pytest.approx(_mann_whitney(s, y))
    assert r["roc_auc"] > 0.6
    # The scores negated give the complement, so a swap of roles would show.
    assert discovery_report(-s, y)["roc_auc"] == pytest.approx(1 - r["roc_auc"])


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0], [True, True, True]])
def test_one_class_only_is_refused(labels):
    with pytest.raises(DataError, match="undefined"):
        discovery_report([0.1, 0.2, 0.3], labels)


def test_nan_scores_and_bad_inputs_are_refused():
    with pytest.raises(DataError, match="clip 1"):
        discovery_report([0.1, np.nan, 0.3], [1, 0, 1])
    with pytest.raises(DataError, match="same length"):
        discovery_report([0.1, 0.2], [1, 0, 1])
    with pytest.raises(DataError, match="clip 2"):
        discovery_report([0.1, 0.2, 0.3], [1, 0, 2])


def test_curves_are_json_finite_and_match_the_report():
    s = [0.9, 0.8, 0.7, 0.6, 0.5]
    y = [1, 0, 1, 0, 1]
    c = discovery_curves(s, y)
    json.dumps(c, allow_nan=False)  # finite and plain
    roc, pr = c["roc"], c["pr"]
    assert roc["fpr"][0] == 0.0 and roc["tpr"][0] == 0.0
    assert roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0
    assert roc["thresholds"][0] > 0.9  # "above every score", not inf
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"])
    assert pr["recall"][0] == 1.0 and pr["recall"][-1] == 0.0 and pr["precision"][-1] == 1.0
    # Step-wise area of the stored PR points equals the report's AP.
    rec, prec = np.array(pr["recall"]), np.array(pr["precision"])
    assert -np.sum(np.diff(rec) * prec[:-1]) == pytest.approx(c["pr_auc"])
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(c["roc_auc"])
    assert c["positive_rate"] == 0.6


def test_curves_are_thinned_keeping_endpoints():
    rng = np.random.default_rng(1)
    y = rng.random(2000) < 0.5
    s = rng.normal(size=2000) + y
    full = discovery_curves(s, y, max_points=None)
    thin = discovery_curves(s, y, max_points=50)
    assert len(full["pr"]["recall"]) > 50
    for curve, keys in (("roc", ("fpr", "tpr")), ("pr", ("precision", "recall"))):
        for key in (*keys, "thresholds"):
            values = thin[curve][key]
            assert 2 <= len(values) <= 50
            assert values[0] == full[curve][key][0]
            assert values[-1] == full[curve][key][-1]
    assert thin["roc_auc"] == full["roc_auc"]
    with pytest.raises(DataError, match="max_points"):
        discovery_curves(s, y, max_points=1)
