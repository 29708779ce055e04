"""Bootstrap confidence intervals over test clips — pure functions of prediction arrays.

A run's score is the mean over its evaluation units (folds × seeds, or GZSL splits × seeds) of
a per-unit metric. :func:`bootstrap_ci` resamples the test clips of **every unit** with
replacement (each unit keeps its own clip count), recomputes the metric per unit, averages over
units, and reports the percentile interval of that average over ``n`` resamples (Efron &
Tibshirani 1993, §13.3). It measures how much the score depends on which clips were tested —
unlike the spread over folds/seeds, which also moves the classes and the training seed.

Metrics take ``(y, p)`` — integer label and prediction arrays of shape ``[B, n]`` — and return a
``[B]`` array (:func:`unweighted_accuracy`, :func:`weighted_accuracy`, :func:`seen_unseen`).

:func:`paired_bootstrap_ci` is the form for runs whose units all test **the same** clips (the
tri-modal protocols: every training seed scores the same evaluation clips or queries): one
resample of the clips is drawn and applied to every unit, so the interval reflects the clips,
not seed noise averaged away. Its units are named per-clip columns and its metrics take the
resampled columns: :func:`roc_auc`, :func:`average_precision` (discovery),
:func:`recall_at` and :func:`median` (retrieval ranks), :func:`mean_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _recalls(y: np.ndarray, p: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """``[B, len(classes)]`` recalls (NaN where a resample has no clip of the class)."""
    out = np.full((y.shape[0], len(classes)), np.nan)
    hit = y == p
    for j, c in enumerate(classes):
        is_c = y == c
        n = is_c.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(n > 0, (hit & is_c).sum(axis=1) / n, np.nan)
    return out


def _row_nanmean(a: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries (NaN for an all-NaN row), without warnings."""
    count = (~np.isnan(a)).sum(axis=1)
    return np.where(count > 0, np.nansum(a, axis=1) / np.maximum(count, 1), np.nan)


def unweighted_accuracy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """UA: mean per-class recall ``(1/|C|) Σ_c recall_c`` over the classes present."""
    return _row_nanmean(_recalls(y, p, np.unique(y)))


def weighted_accuracy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """WA: the share of clips predicted right."""
    return (y == p).mean(axis=1)


def seen_unseen(seen: Sequence[int]) -> dict[str, Metric]:
    """GZSL's S, U and HM for one unit whose seen classes are ``seen`` (integer codes)."""
    seen_set = np.asarray(sorted(seen))

    def part(y, p, want_seen: bool):
        classes = [c for c in np.unique(y) if (c in seen_set) == want_seen]
        if not classes:
            return np.full(y.shape[0], np.nan)
        return _row_nanmean(_recalls(y, p, classes))

    def hm(y, p):
        s, u = part(y, p, True), part(y, p, False)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(s + u > 0, 2 * s * u / (s + u), 0.0)

    return {"S": lambda y, p: part(y, p, True), "U": lambda y, p: part(y, p, False), "HM": hm}


def bootstrap_ci(
    units: Sequence[tuple[np.ndarray, np.ndarray, dict[str, Metric]]],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap interval of the mean over units of each metric.

    Args:
        units: ``(labels, predictions, {metric name: metric})`` per unit; labels and
            predictions are integer arrays of the unit's test clips.
        n: Resamples (1,000 by default).
        seed: Seed of the resampling (same inputs and seed → same interval).
        level: Coverage of the interval.

    Returns:
        ``{metric: {"value", "low", "high"}}`` — ``value`` is the metric on the clips as
        tested (the mean over units), ``low``/``high`` the interval's ends.
    """
    if not units:
        raise ValueError("no units to resample")
    rng = np.random.default_rng(seed)
    names = list(units[0][2])
    draws = {m: np.zeros(n) for m in names}
    values = {m: 0.0 for m in names}
    for y, p, metrics in units:
        y, p = np.asarray(y), np.asarray(p)
        idx = rng.integers(0, len(y), size=(n, len(y)))
        for m in names:
            values[m] += float(metrics[m](y[None, :], p[None, :])[0]) / len(units)
            draws[m] += np.nan_to_num(metrics[m](y[idx], p[idx])) / len(units)
    alpha = (1 - level) / 2
    return {
        m: {
            "value": values[m],
            "low": float(np.quantile(draws[m], alpha)),
            "high": float(np.quantile(draws[m], 1 - alpha)),
        }
        for m in names
    }


Columns = Mapping[str, np.ndarray]
ColumnMetric = Callable[[Columns], np.ndarray]


def roc_auc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row: ``(Σ_{i: y_i=1} rank(s_i) − P(P+1)/2) / (P·N)`` with ``rank`` the
    1-based mid-rank of the row's scores (ties share the mean rank), ``P``/``N`` the row's
    positives/negatives — the Mann–Whitney form, equal to scikit-learn's ``roc_auc_score`` (a
    tie counts ½). NaN for a row with one class only.

    Args:
        y: ``[B, n]`` bool or 0/1 labels.
        s: ``[B, n]`` scores, higher = more likely positive.
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    r = rankdata(np.asarray(s, dtype=np.float64), axis=1)
    pos = y.sum(axis=1)
    neg = y.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((r * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def average_precision(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Step-wise average precision of each row: ``AP = Σ_t (R_t − R_{t−1}) P_t`` over the
    distinct score thresholds ``t``, highest first, where ``P_t``/``R_t`` are the precision and
    recall of calling every clip with ``s ≥ t`` positive — scikit-learn's
    ``average_precision_score`` (tied scores form one threshold). NaN for a row without
    positives.

    Args:
        y: ``[B, n]`` bool or 0/1 labels.
        s: ``[B, n]`` scores, higher = more likely positive.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    yy = np.take_along_axis(y, order, axis=1)
    tp = np.cumsum(yy, axis=1)
    n = s.shape[1]
    precision = tp / np.arange(1, n + 1)
    # each position takes the precision at the end of its block of tied scores
    end = np.ones_like(yy)
    end[:, :-1] = ss[:, :-1] != ss[:, 1:]
    ends = np.where(end, np.arange(n), n)
    block_end = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]
    at_end = np.take_along_axis(precision, block_end, axis=1)
    pos = yy.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (yy * at_end).sum(axis=1) / pos
    return np.where(pos > 0, ap, np.nan)


def recall_at(k: int, column: str = "rank") -> ColumnMetric:
    """R@k of resampled queries: ``1/Q Σ_q [rank_q ≤ k]`` (``rank_q``: the 1-based rank of the
    query's first relevant item, column ``column``)."""

    def metric(c: Columns) -> np.ndarray:
        return (np.asarray(c[column]) <= k).mean(axis=1)

    return metric


def median(column: str) -> ColumnMetric:
    """The median of ``column`` over each resample (the median rank)."""
    return lambda c: np.median(np.asarray(c[column], dtype=np.float64), axis=1)


def mean_of(column: str) -> ColumnMetric:
    """The mean of ``column`` over each resample (e.g. mAP@10 = the mean of the queries'
    AP@10)."""
    return lambda c: np.asarray(c[column], dtype=np.float64).mean(axis=1)


def resample(
    n_rows: int, n: int, rng: np.random.Generator, strata: np.ndarray | None = None
) -> np.ndarray:
    """``[n, n_rows]`` row indices drawn with replacement; with ``strata``, each stratum's rows
    are drawn from that stratum only, as many as it has (a stratified bootstrap: every resample
    keeps the class counts, so e.g. ROC-AUC stays defined)."""
    if strata is None:
        return rng.integers(0, n_rows, size=(n, n_rows))
    strata = np.asarray(strata)
    parts = []
    for value in np.unique(strata):
        rows = np.flatnonzero(strata == value)
        parts.append(rows[rng.integers(0, len(rows), size=(n, len(rows)))])
    return np.concatenate(parts, axis=1)


def paired_bootstrap_ci(
    units: Sequence[Columns],
    metrics: Mapping[str, ColumnMetric],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    strata: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap interval of the mean over units when every unit tests the same
    clips (row ``i`` of every unit's columns is the same clip or query).

    Each resample ``b`` draws one set of rows ``I_b`` (with replacement; within each stratum
    with ``strata``) and applies it to every unit: ``θ*_b = 1/U Σ_u metric(unit_u[I_b])``. The
    interval is the ``(1 ± level)/2`` quantiles of the ``θ*_b`` (Efron & Tibshirani 1993,
    §13.3), resamples where a metric is undefined (NaN) left out.

    Args:
        units: Per unit (e.g. per training seed), ``{column: [rows] array}``, all of one length.
        metrics: ``{name: metric}``; a metric maps ``{column: [B, rows]}`` to ``[B]``.
        n: Resamples (1,000 by default).
        seed: Seed of the resampling (same inputs and seed → same interval).
        level: Coverage of the interval.
        strata: ``[rows]`` stratum of each row (e.g. the sounding label), or None.

    Returns:
        ``{metric: {"value", "low", "high"}}`` — ``value`` is the mean over units of the metric
        on the rows as tested.

    Raises:
        ValueError: no units, or units of different lengths.
    """
    if not units:
        raise ValueError("no units to resample")
    lengths = {len(next(iter(u.values()))) for u in units} | {
        len(v) for u in units for v in u.values()
    }
    if len(lengths) != 1:
        raise ValueError(
            f"units have columns of lengths {sorted(lengths)}; a paired bootstrap needs the "
            "same rows (clips) in every unit"
        )
    idx = resample(lengths.pop(), n, np.random.default_rng(seed), strata)
    alpha = (1 - level) / 2
    out = {}
    for name, metric in metrics.items():
        value = draws = 0.0
        for u in units:
            cols = {k: np.asarray(v) for k, v in u.items()}
            value += float(metric({k: v[None, :] for k, v in cols.items()})[0]) / len(units)
            draws = draws + metric({k: v[idx] for k, v in cols.items()}) / len(units)
        draws = np.asarray(draws)
        draws = draws[~np.isnan(draws)]
        low, high = (
            (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha)))
            if draws.size
            else (float("nan"), float("nan"))
        )
        out[name] = {"value": value, "low": low, "high": high}
    return out
