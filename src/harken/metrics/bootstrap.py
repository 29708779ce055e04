"""Bootstrap confidence intervals over test clips — pure functions of prediction arrays.

A run's score is the mean over its evaluation units (folds × seeds, or GZSL splits × seeds) of
a per-unit metric. :func:`bootstrap_ci` resamples the test clips of **every unit** with
replacement (each unit keeps its own clip count), recomputes the metric per unit, averages over
units, and reports the percentile interval of that average over ``n`` resamples (Efron &
Tibshirani 1993, §13.3). It measures how much the score depends on which clips were tested —
unlike the spread over folds/seeds, which also moves the classes and the training seed.

Metrics take ``(y, p)`` — integer label and prediction arrays of shape ``[B, n]`` — and return a
``[B]`` array (:func:`unweighted_accuracy`, :func:`weighted_accuracy`, :func:`seen_unseen`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
