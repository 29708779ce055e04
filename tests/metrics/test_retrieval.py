"""Retrieval metrics on hand-computed cases, against scikit-learn's AP, and on ties."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from harken.metrics.retrieval import (
    average_precision_at_k,
    class_relevance,
    map_at_k,
    mean_rank,
    median_rank,
    ranks,
    recall_at_k,
    retrieval_report,
)

# 3 queries × 5 items, one relevant item each.
#   q0 ranks the items 0, 4, 2, 3, 1 and item 2 is relevant → rank 3
#   q1 ranks the items 1, 3, 2, 0, 4 and item 1 is relevant → rank 1
#   q2 ranks the items 0, 1, 2, 3, 4 and item 4 is relevant → rank 5
SCORES = np.array(
    [
        [0.9, 0.1, 0.5, 0.3, 0.7],
        [0.2, 0.8, 0.4, 0.6, 0.0],
        [0.5, 0.4, 0.3, 0.2, 0.1],
    ]
)
RELEVANT = np.zeros((3, 5), dtype=bool)
RELEVANT[0, 2] = RELEVANT[1, 1] = RELEVANT[2, 4] = True


def _random_case(rng: np.random.Generator, q: int, n: int, max_relevant: int):
    scores = rng.standard_normal((q, n))  # continuous: no ties
    relevant = np.zeros((q, n), dtype=bool)
    for i in range(q):
        relevant[i, rng.choice(n, size=int(rng.integers(1, max_relevant + 1)), replace=False)] = 1
    return scores, relevant


def test_hand_computed_ranks_recall_and_map():
    np.testing.assert_array_equal(ranks(SCORES, RELEVANT), [3, 1, 5])
    assert recall_at_k(SCORES, RELEVANT, 1) == pytest.approx(1 / 3)
    assert recall_at_k(SCORES, RELEVANT, 3) == pytest.approx(2 / 3)
    assert recall_at_k(SCORES, RELEVANT, 5) == 1.0
    np.testing.assert_allclose(average_precision_at_k(SCORES, RELEVANT, 10), [1 / 3, 1, 1 / 5])
    np.testing.assert_allclose(average_precision_at_k(SCORES, RELEVANT, 4), [1 / 3, 1, 0])
    assert map_at_k(SCORES, RELEVANT) == pytest.approx((1 / 3 + 1 + 1 / 5) / 3)
    assert mean_rank(SCORES, RELEVANT) == 3.0
    assert median_rank(SCORES, RELEVANT) == 3.0


# 3 queries × 7 items, so that R@5 < 1 when a relevant item ranks 6th:
#   q0 ranks item 2 third, q1 ranks item 5 sixth, q2 ranks item 0 first → ranks 3, 6, 1
SEVEN = np.array(
    [
        [0.9, 0.1, 0.5, 0.3, 0.7, 0.05, 0.02],
        [0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        [0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ]
)
SEVEN_RELEVANT = np.zeros((3, 7), dtype=bool)
SEVEN_RELEVANT[0, 2] = SEVEN_RELEVANT[1, 5] = SEVEN_RELEVANT[2, 0] = True


def test_report_has_the_standard_keys_as_plain_floats():
    report = retrieval_report(SEVEN, SEVEN_RELEVANT)
    assert list(report) == ["R@1", "R@5", "R@10", "mAP@10", "mean_rank", "median_rank"]
    assert all(type(v) is float for v in report.values())
    np.testing.assert_array_equal(ranks(SEVEN, SEVEN_RELEVANT), [3, 6, 1])
    assert report["R@1"] == pytest.approx(1 / 3)  # q2 only
    assert report["R@5"] == pytest.approx(2 / 3)  # q1's item ranks 6th
    assert report["R@10"] == 1.0
    assert report["mAP@10"] == pytest.approx((1 / 3 + 1 / 6 + 1) / 3)
    assert report["mean_rank"] == pytest.approx(10 / 3)
    assert report["median_rank"] == 3.0


def test_average_precision_with_several_relevant_items():
    # Items in score order; relevant at positions 1, 3 and 6 (R = 3):
    #   P(1) = 1, P(3) = 2/3, P(6) = 3/6
    #   AP@6 = (1 + 2/3 + 1/2) / 3 = 13/18
    #   AP@5 = AP@3 = (1 + 2/3) / min(3, k) = 5/9
    #   AP@2 = 1 / min(3, 2) = 1/2
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    relevant = np.array([[1, 0, 1, 0, 0, 1]], dtype=bool)
    for k, expected in [(6, 13 / 18), (10, 13 / 18), (5, 5 / 9), (3, 5 / 9), (2, 1 / 2)]:
        assert average_precision_at_k(scores, relevant, k)[0] == pytest.approx(expected), k
    assert ranks(scores, relevant)[0] == 1


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_when_k_covers_all_items(seed):
    scores, relevant = _random_case(np.random.default_rng(seed), q=20, n=15, max_relevant=6)
    expected = [average_precision_score(r, s) for s, r in zip(scores, relevant, strict=True)]
    for k in (15, 40):
        np.testing.assert_allclose(average_precision_at_k(scores, relevant, k), expected)
    assert map_at_k(scores, relevant, 15) == pytest.approx(np.mean(expected))


def test_single_relevant_map_at_10_is_mean_reciprocal_rank_within_10():
    scores, relevant = _random_case(np.random.default_rng(7), q=200, n=40, max_relevant=1)
    r = ranks(scores, relevant)
    assert (r > 10).any() and (r <= 10).any()
    assert map_at_k(scores, relevant) == pytest.approx(np.mean(np.where(r <= 10, 1 / r, 0)))
    assert recall_at_k(scores, relevant, 10) == pytest.approx(np.mean(r <= 10))


def test_recall_counts_a_query_when_any_relevant_item_is_retrieved():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    relevant = np.array([[0, 1, 0, 1]], dtype=bool)
    assert ranks(scores, relevant)[0] == 2
    assert recall_at_k(scores, relevant, 1) == 0.0
    assert recall_at_k(scores, relevant, 2) == 1.0


def test_ties_are_broken_by_item_index():
    flat = np.zeros((1, 4))
    for j in range(4):
        relevant = np.zeros((1, 4), dtype=bool)
        relevant[0, j] = True
        assert ranks(flat, relevant)[0] == j + 1
    # A relevant item tied with a lower-index irrelevant one ranks after it, before higher ones.
    scores = np.array([[0.5, 0.9, 0.5, 0.5]])
    relevant = np.array([[0, 0, 1, 0]], dtype=bool)
    assert ranks(scores, relevant)[0] == 3
    # Integer scores and -0.0 / 0.0 tie the same way.
    assert ranks(np.array([[3, 3, 1]]), np.array([[0, 1, 0]], dtype=bool))[0] == 2
    assert ranks(np.array([[0.0, -0.0]]), np.array([[0, 1]], dtype=bool))[0] == 2


def test_a_query_without_relevant_items_is_named():
    relevant = RELEVANT.copy()
    relevant[1] = False
    with pytest.raises(ValueError, match="query 1 has no relevant item"):
        ranks(SCORES, relevant)
    with pytest.raises(ValueError, match="query 1"):
        retrieval_report(SCORES, relevant)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        ranks(SCORES, RELEVANT[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        ranks(SCORES[0], RELEVANT[0])
    with pytest.raises(ValueError, match="at least one query"):
        ranks(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool))
    nan = SCORES.copy()
    nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="query 2: scores contain NaN"):
        ranks(nan, RELEVANT)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="positive integer"):
            recall_at_k(SCORES, RELEVANT, k)


def test_infinite_scores_rank_first_and_last():
    scores = np.array([[0.0, np.inf, -np.inf, 1.0]])
    np.testing.assert_array_equal(
        [ranks(scores, np.eye(4, dtype=bool)[j][None])[0] for j in range(4)], [3, 1, 4, 2]
    )


def test_class_relevance():
    relevant = class_relevance(["a", "b"], ["b", "a", "a", "c"])
    np.testing.assert_array_equal(relevant, [[0, 1, 1, 0], [1, 0, 0, 0]])
    assert relevant.dtype == bool
    labels = np.array([3, 1, 3])
    np.testing.assert_array_equal(class_relevance(labels, labels), labels[:, None] == labels)
    assert class_relevance([], ["a"]).shape == (0, 1)
