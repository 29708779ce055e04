"""UA / WA / UP against scikit-learn on random cases, plus chance level and mean/std by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score

from harken.metrics.classification import (
    chance_level,
    classification_report,
    mean_std,
    unweighted_accuracy,
    unweighted_precision,
    weighted_accuracy,
)

NAMES = ["blender", "book", "chopping", "drawer", "eat", "fridge", "peel"]


def _random_case(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    n = int(rng.integers(1, 40))
    true_pool = rng.choice(NAMES, size=int(rng.integers(1, len(NAMES) + 1)), replace=False)
    # predictions may use classes absent from y_true and never predict some true classes
    pred_pool = rng.choice(NAMES, size=int(rng.integers(1, len(NAMES) + 1)), replace=False)
    y_true = [str(x) for x in rng.choice(true_pool, size=n)]
    y_pred = [str(x) for x in rng.choice(pred_pool, size=n)]
    return y_true, y_pred


def _sklearn_ua(y_true, y_pred) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        return balanced_accuracy_score(y_true, y_pred)


@pytest.mark.parametrize("seed", range(200))
def test_metrics_equal_sklearn_on_random_string_labels(seed):
    y_true, y_pred = _random_case(np.random.default_rng(seed))
    present = sorted(set(y_true))
    expected_up = precision_score(y_true, y_pred, average="macro", zero_division=0, labels=present)

    assert unweighted_accuracy(y_true, y_pred) == pytest.approx(_sklearn_ua(y_true, y_pred))
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred))
    assert unweighted_precision(y_true, y_pred) == pytest.approx(expected_up)
    report = classification_report(y_true, y_pred)
    assert report == pytest.approx(
        {"UA": _sklearn_ua(y_true, y_pred), "WA": accuracy_score(y_true, y_pred), "UP": expected_up}
    )


def test_random_cases_include_never_predicted_and_foreign_predictions():
    """Guard: the random cases above really exercise the tricky situations."""
    cases = [_random_case(np.random.default_rng(s)) for s in range(200)]
    assert any(set(t) - set(p) for t, p in cases)  # a true class never predicted
    assert any(set(p) - set(t) for t, p in cases)  # a predicted class never true


def test_ua_differs_from_wa_on_imbalanced_classes():
    y_true = ["a"] * 8 + ["b"] * 2
    y_pred = ["a"] * 10
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(0.8)
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx(0.5)  # (1 + 0) / 2
    assert unweighted_precision(y_true, y_pred) == pytest.approx(0.4)  # (0.8 + 0) / 2


def test_explicit_classes_count_absent_classes_as_zero():
    y_true, y_pred = ["a", "a", "b"], ["a", "b", "b"]
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx((0.5 + 1.0) / 2)
    assert unweighted_accuracy(y_true, y_pred, classes=["a", "b", "c"]) == pytest.approx(1.5 / 3)
    assert unweighted_precision(y_true, y_pred, classes=["a", "b", "c"]) == pytest.approx(
        (1.0 + 0.5 + 0.0) / 3
    )


def test_integer_labels_work():
    assert unweighted_accuracy([0, 0, 1, 2], [0, 1, 1, 0]) == pytest.approx((0.5 + 1 + 0) / 3)


def test_length_mismatch_and_empty_inputs_raise():
    with pytest.raises(ValueError, match="3 items but y_pred has 2"):
        weighted_accuracy(["a", "b", "c"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        unweighted_accuracy([], [])


def test_chance_level_hand_cases():
    y_true = ["a", "a", "b", "c"]
    assert chance_level(y_true) == pytest.approx({"UA": 1 / 3, "WA": 1 / 3, "UP": 1 / 3})
    # 10 candidates of which 3 occur: recall 1/10 per class, precision share n_c/N averaged
    assert chance_level(y_true, n_candidates=10) == pytest.approx(
        {"UA": 0.1, "WA": 0.1, "UP": 1 / 3}
    )
    assert chance_level(["x"] * 5, n_candidates=4) == pytest.approx(
        {"UA": 0.25, "WA": 0.25, "UP": 1.0}
    )


def test_chance_level_matches_a_simulated_uniform_guesser():
    rng = np.random.default_rng(0)
    y_true = [str(x) for x in rng.choice(["a", "b", "c", "d"], size=400)]
    candidates = ["a", "b", "c", "d", "e"]
    sims = [
        classification_report(y_true, [str(x) for x in rng.choice(candidates, size=400)])
        for _ in range(300)
    ]
    expected = chance_level(y_true, n_candidates=len(candidates))
    for key in ("UA", "WA", "UP"):
        assert np.mean([s[key] for s in sims]) == pytest.approx(expected[key], abs=0.01)


def test_mean_std_is_population_std():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        {"mean": 2.5, "std": float(np.sqrt(1.25))}
    )
    assert mean_std([0.7]) == {"mean": 0.7, "std": 0.0}
