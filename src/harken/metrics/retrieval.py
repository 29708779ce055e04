"""Retrieval metrics as pure functions of a score matrix and a relevance matrix.

Every function takes ``scores`` ``[Q, N]`` (query × item, higher = better) and ``relevant``
``[Q, N]`` (bool: item ``j`` is a correct answer to query ``i``); every query needs at least one
relevant item. The metrics are those of audio–text retrieval papers (CLAP, Wu et al. 2023;
Elizalde et al. 2023) and of the DCASE language-based audio retrieval task (2022 onwards):
R@1, R@5, R@10 and mAP@10.

**Ties.** Items are ranked by descending score, and items with equal scores in the order of
their item index (a stable sort of ``-scores``). This is deterministic but not pessimistic: a
relevant item tied with irrelevant ones ranks above those with a higher index. Real model scores
are floats and rarely tie; a scorer that returns constant scores would be rewarded for relevant
items with low indices, so check such a scorer with shuffled items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(scores, relevant) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(relevant, dtype=bool)
    if s.ndim != 2 or s.shape != r.shape:
        raise ValueError(
            f"scores {s.shape} and relevant {r.shape} must be 2-D matrices of the same shape "
            "[queries, items]"
        )
    if s.size == 0:
        raise ValueError("retrieval metrics need at least one query and one item")
    if np.isnan(s).any():
        q = int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
        raise ValueError(f"query {q}: scores contain NaN, which cannot be ranked")
    empty = np.flatnonzero(~r.any(axis=1))
    if empty.size:
        raise ValueError(
            f"query {int(empty[0])} has no relevant item ({empty.size} queries in all); "
            "every query needs at least one relevant item"
        )
    return s, r


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _ranked_relevance(scores, relevant) -> np.ndarray:
    """``relevant`` with each row reordered best-scored item first (ties by item index)."""
    s, r = _check(scores, relevant)
    order = np.argsort(-s, axis=1, kind="stable")
    return np.take_along_axis(r, order, axis=1)


def _first(ranked: np.ndarray) -> np.ndarray:
    return np.argmax(ranked, axis=1) + 1


def _average_precision(ranked: np.ndarray, k: int) -> np.ndarray:
    top = ranked[:, :k].astype(np.float64)
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    return (precision * top).sum(axis=1) / np.minimum(ranked.sum(axis=1), k)


def ranks(scores, relevant) -> np.ndarray:
    """1-based rank of each query's best-ranked relevant item.

    ``rank_q = min {i : rel_q(i)}``, where ``rel_q(i)`` says whether the item at position ``i``
    (1-based) of query ``q``'s ranking is relevant.

    Returns:
        int ``[Q]``.
    """
    return _first(_ranked_relevance(scores, relevant))


def recall_at_k(scores, relevant, k: int) -> float:
    """R@k: the fraction of queries with at least one relevant item among the top ``k``.

    ``R@k = 1/Q Σ_q [rank_q ≤ k]`` — the recall of CLAP / DCASE audio–text retrieval, which
    counts a query as a hit when *any* relevant item is retrieved (not the fraction of its
    relevant items that are).
    """
    k = _check_k(k)
    return float(np.mean(ranks(scores, relevant) <= k))


def average_precision_at_k(scores, relevant, k: int) -> np.ndarray:
    """AP@k of each query.

    ``AP@k = 1/min(R, k) Σ_{i=1..k} P(i)·rel(i)`` with ``P(i) = 1/i Σ_{j≤i} rel(j)`` the
    precision of the top ``i`` items and ``R`` the query's number of relevant items. With a single
    relevant item this is ``1/rank`` if ``rank ≤ k`` else 0; with ``k ≥ N`` it is the
    (untruncated) average precision of scikit-learn's ``average_precision_score`` for tie-free
    scores.

    Returns:
        float ``[Q]``.
    """
    return _average_precision(_ranked_relevance(scores, relevant), _check_k(k))


def map_at_k(scores, relevant, k: int = 10) -> float:
    """mAP@k: the mean of :func:`average_precision_at_k` over queries.

    ``mAP@k = 1/Q Σ_q AP@k_q``. With ``k = 10`` and one relevant audio per caption this is the
    main metric of the DCASE language-based audio retrieval task since 2022 (Task 6b; Xie,
    Lipping & Virtanen, "Language-based Audio Retrieval Task in DCASE 2022 Challenge", DCASE
    Workshop 2022): ``1/Q Σ_q [rank_q ≤ 10] / rank_q``.
    """
    return float(np.mean(average_precision_at_k(scores, relevant, k)))


def mean_rank(scores, relevant) -> float:
    """``1/Q Σ_q rank_q``, the mean rank of each query's best-ranked relevant item."""
    return float(np.mean(ranks(scores, relevant)))


def median_rank(scores, relevant) -> float:
    """The median over queries of ``rank_q`` (the mean of the two middle ones for even ``Q``)."""
    return float(np.median(ranks(scores, relevant)))


def retrieval_report(
    scores, relevant, ks: Sequence[int] = (1, 5, 10), map_k: int = 10
) -> dict[str, float]:
    """``{"R@k" for k in ks, "mAP@<map_k>", "mean_rank", "median_rank"}`` as plain floats.

    The default keys are ``R@1``, ``R@5``, ``R@10``, ``mAP@10``, ``mean_rank`` and
    ``median_rank``. The ranking is computed once.
    """
    ranked = _ranked_relevance(scores, relevant)
    first = _first(ranked)
    out = {f"R@{_check_k(k)}": float(np.mean(first <= k)) for k in ks}
    out[f"mAP@{_check_k(map_k)}"] = float(np.mean(_average_precision(ranked, _check_k(map_k))))
    out["mean_rank"] = float(np.mean(first))
    out["median_rank"] = float(np.median(first))
    return out


def class_relevance(query_labels: Sequence, item_labels: Sequence) -> np.ndarray:
    """Relevance by shared class: ``relevant[i, j] = (query_labels[i] == item_labels[j])``.

    Returns:
        bool ``[len(query_labels), len(item_labels)]``.
    """
    queries, items = list(query_labels), list(item_labels)
    codes: dict = {}
    q = np.array([codes.setdefault(x, len(codes)) for x in queries], dtype=np.int64)
    i = np.array([codes.setdefault(x, len(codes)) for x in items], dtype=np.int64)
    return q[:, None] == i[None, :]
