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

**Cross-modal retrieval** (Chen et al. 2024, §6.2): :func:`cross_modal_retrieval`,
:func:`six_directions` and :func:`split_pools` take embeddings and action groups instead; they
build the cosine score matrix and the same-group relevance and reuse :func:`retrieval_report`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harken.errors import DataError


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


# --- Cross-modal retrieval of sounding actions (Chen et al. 2024, §6.2, Table 3) -------------

#: The modalities of :func:`six_directions`, in the order the directions are listed.
MODALITIES = ("audio", "video", "text")


def _unit_rows(emb, name: str) -> np.ndarray:
    """``emb`` as float64 rows of unit L2 norm; a NaN or all-zero row is an error."""
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty [rows, dim] matrix, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise DataError(
            f"{name} row {int(bad[0])} is all zeros or not finite ({bad.size} rows in all); "
            "its cosine similarity is undefined — drop the row or re-embed the clip"
        )
    return x / norms[:, None]


def cross_modal_retrieval(
    query_emb,
    item_emb,
    query_groups: Sequence,
    item_groups: Sequence,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
) -> dict:
    """Group-level cross-modal retrieval (Chen et al. 2024, §6.2).

    ``score[i, j] = cos(q_i, v_j) = q_iᵀ v_j / (‖q_i‖ ‖v_j‖)`` and
    ``relevant[i, j] = (group(q_i) = group(v_j))`` — "a retrieval is correct if the retrieved
    instance B and A belong to the same action group" — then :func:`retrieval_report`
    (``R@k = 1/Q Σ_q [rank_q ≤ k]``, ``mAP@k``, mean and median rank; ties as in the module
    docstring). Table 3 reports R@5 and R@10 (in %).

    A query whose group has no item in the retrieval pool cannot be answered; it is dropped and
    counted in ``n_queries_without_relevant`` (with :func:`split_pools` there are none).

    Args:
        query_emb: ``[Q, D]`` embeddings of the query modality.
        item_emb: ``[N, D]`` embeddings of the retrieved modality (same space).
        query_groups: ``[Q]`` action group of each query.
        item_groups: ``[N]`` action group of each item.
        ks: The ``k`` of the R@k.
        map_k: The ``k`` of mAP@k.

    Returns:
        :func:`retrieval_report`'s ``{"R@1", "R@5", "R@10", "mAP@10", "mean_rank",
        "median_rank"}`` plus ``n_queries`` (used), ``n_items`` and
        ``n_queries_without_relevant``.

    Raises:
        DataError: shapes or group counts disagree, a row is zero/NaN, or no query has a
            relevant item.
    """
    q = _unit_rows(query_emb, "query_emb")
    v = _unit_rows(item_emb, "item_emb")
    if q.shape[1] != v.shape[1]:
        raise DataError(
            f"query_emb has dim {q.shape[1]} but item_emb has dim {v.shape[1]}; both "
            "modalities must be embedded in the same joint space"
        )
    if len(query_groups) != len(q) or len(item_groups) != len(v):
        raise DataError(
            f"{len(query_groups)} query groups for {len(q)} query rows and {len(item_groups)} "
            f"item groups for {len(v)} item rows; give one group per row"
        )
    relevant = class_relevance(query_groups, item_groups)
    answerable = relevant.any(axis=1)
    if not answerable.any():
        raise DataError(
            f"none of the {len(q)} queries has an item of its group among the {len(v)} items; "
            "split each group across both pools (split_pools)"
        )
    out: dict = retrieval_report(q[answerable] @ v.T, relevant[answerable], ks, map_k)
    out["n_queries"] = int(answerable.sum())
    out["n_items"] = len(v)
    out["n_queries_without_relevant"] = int((~answerable).sum())
    return out


def six_directions(
    emb: dict[str, np.ndarray],
    groups: Sequence,
    query_idx: Sequence[int],
    item_idx: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
) -> dict[str, dict]:
    """:func:`cross_modal_retrieval` for every ordered pair of the modalities in ``emb``.

    With audio, video and text that is six directions (Table 3 shows V→A, A→V, L→A and A→L):
    ``"<query>_to_<item>"`` uses the query modality's rows ``query_idx`` (the query pool) and
    the item modality's rows ``item_idx`` (the retrieval pool).

    Args:
        emb: ``{"audio": [N, D], "video": [N, D], "text": [N, D]}`` (two or more; row ``i`` of
            each is instance ``i``); names other than :data:`MODALITIES` are allowed and come
            after them.
        groups: ``[N]`` action group of each instance.
        query_idx: Rows of the query pool.
        item_idx: Rows of the retrieval pool.

    Returns:
        ``{"audio_to_video": report, "audio_to_text": ..., "video_to_audio": ..., ...}``.
    """
    names = [m for m in MODALITIES if m in emb] + sorted(m for m in emb if m not in MODALITIES)
    if len(names) < 2:
        raise DataError(f"cross-modal retrieval needs two modalities or more, got {names}")
    groups = list(groups)
    for m in names:
        if len(emb[m]) != len(groups):
            raise DataError(
                f"emb[{m!r}] has {len(emb[m])} rows but there are {len(groups)} groups; row i "
                "of every modality must be instance i"
            )
    qi = np.asarray(query_idx, dtype=np.int64)
    ii = np.asarray(item_idx, dtype=np.int64)
    qg, ig = [groups[i] for i in qi], [groups[i] for i in ii]
    out = {}
    for a in names:
        for b in names:
            if a != b:
                x, y = np.asarray(emb[a]), np.asarray(emb[b])
                out[f"{a}_to_{b}"] = cross_modal_retrieval(x[qi], y[ii], qg, ig, ks, map_k)
    return out


def split_pools(
    groups: Sequence, seed: int = 0, keep: Sequence[bool] | None = None, min_size: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Chen et al. (2024) §6.2's query and retrieval pools.

    The paper keeps the action groups (verb + noun) with more than two *sounding* instances
    "such that there will be at least one true positive to retrieve for each query" and divides
    each group equally into a query pool (7,559 clips) and a retrieval pool (7,032). Here each
    kept group of ``n ≥ min_size`` instances is shuffled (``numpy.random.default_rng(seed)``,
    groups in order of first appearance) and its first ``⌈n/2⌉`` go to the query pool, the
    other ``⌊n/2⌋ ≥ 1`` to the retrieval pool — the larger half to the queries, as the paper's
    counts suggest.

    Args:
        groups: ``[N]`` action group of each instance.
        seed: Shuffling seed (the split is a function of ``groups``, ``keep`` and ``seed``).
        keep: ``[N]`` bool, the instances that may enter a pool (the paper: the sounding
            ones); groups are counted over these only. Default: all.
        min_size: Smallest group kept (3: "more than two instances").

    Returns:
        ``(query_idx, item_idx)``: sorted int arrays of instance indices, disjoint.
    """
    groups = list(groups)
    mask = np.ones(len(groups), bool) if keep is None else np.asarray(keep, dtype=bool)
    if mask.shape != (len(groups),):
        raise DataError(f"keep has {mask.size} entries for {len(groups)} instances")
    if min_size < 2:
        raise DataError(f"min_size must be ≥ 2 (one query and one item), got {min_size}")
    members: dict = {}
    for i, g in enumerate(groups):
        if mask[i]:
            members.setdefault(g, []).append(i)
    rng = np.random.default_rng(seed)
    query: list[int] = []
    item: list[int] = []
    for rows in members.values():
        if len(rows) < min_size:
            continue
        rows = rng.permutation(rows)
        half = (len(rows) + 1) // 2
        query.extend(rows[:half].tolist())
        item.extend(rows[half:].tolist())
    if not query:
        raise DataError(
            f"no group has {min_size} or more instances (of {int(mask.sum())} kept); nothing "
            "to retrieve"
        )
    return np.sort(np.asarray(query, np.int64)), np.sort(np.asarray(item, np.int64))
