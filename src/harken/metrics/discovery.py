"""Sounding action discovery (Chen et al. 2024, §6.1, Table 2, Fig. 5): ROC-AUC and PR-AUC.

Each test clip ``i`` has a score ``s_i`` — the cosine similarity of its video (or narration)
embedding and its audio embedding — and a label ``y_i ∈ {0, 1}``: whether the action in the clip
sounds. The paper sweeps the threshold over the scores ("instead of defining a hard threshold
for positives, we plot the ROC and precision-recall (PR) curves by varying the positive
threshold") and reports the area under each curve. Both are invariant to monotone changes of the
scores; a random scorer has ROC-AUC 0.5 and PR-AUC equal to the positive rate (Table 2's
"Random" row: 0.500 / 0.559).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harken.errors import DataError


def _check(scores, sounding) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(sounding)
    if s.ndim != 1 or y.shape != s.shape:
        raise DataError(
            f"scores {s.shape} and sounding {y.shape} must be 1-D and of the same length "
            "(one score and one label per clip)"
        )
    if s.size == 0:
        raise DataError("discovery metrics need at least one clip")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise DataError(
            f"clip {int(bad[0])}: score {s[bad[0]]} is not finite ({bad.size} clips in all); "
            "drop those clips or fix the embeddings (a zero embedding gives a NaN cosine)"
        )
    if y.dtype != bool:
        odd = np.flatnonzero((y != 0) & (y != 1))
        if odd.size:
            raise DataError(
                f"clip {int(odd[0])}: sounding label {y[odd[0]]!r} is not 0/1 or a bool"
            )
    y = y.astype(bool)
    positives = int(y.sum())
    if positives in (0, y.size):
        kind = "sounding" if positives else "silent"
        raise DataError(
            f"all {y.size} clips are {kind}: ROC-AUC and PR-AUC are undefined with one class "
            "only; evaluate on a set with both sounding and non-sounding clips"
        )
    return s, y


def discovery_report(scores: Sequence[float], sounding: Sequence) -> dict:
    """ROC-AUC and PR-AUC of a score against the sounding labels, with the random baseline.

    * ``roc_auc`` = ``P(s_i > s_j) + ½ P(s_i = s_j)`` for a random sounding ``i`` and silent
      ``j`` (the Mann–Whitney form of the trapezoidal area under the ROC curve; scikit-learn's
      ``roc_auc_score``).
    * ``pr_auc`` = ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the distinct thresholds, highest first
      (scikit-learn's ``average_precision_score``): the **step-wise** area under the PR curve.
      Not the trapezoidal ``auc(recall, precision)``: linear interpolation between PR points
      is not achievable by any classifier (Davis & Goadrich, ICML 2006) and overestimates the
      area, most where positives are sparse. The paper does not say which one it uses.
    * ``positive_rate`` = ``P/N``, the PR-AUC of a random (or constant) scorer.

    Args:
        scores: ``[N]`` higher = more likely sounding (e.g. audio–video cosine similarity).
        sounding: ``[N]`` bool or 0/1.

    Returns:
        ``{"roc_auc", "pr_auc", "n", "positives", "positive_rate",
        "random": {"roc_auc": 0.5, "pr_auc": positive_rate}}``.

    Raises:
        DataError: lengths differ, a score is NaN/inf, a label is not 0/1, or all clips share
            one label (both AUCs are undefined then).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, y = _check(scores, sounding)
    rate = float(y.mean())
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "n": int(y.size),
        "positives": int(y.sum()),
        "positive_rate": rate,
        "random": {"roc_auc": 0.5, "pr_auc": rate},
    }


def _thin(n: int, max_points: int | None) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``n`` points, both endpoints kept."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def discovery_curves(
    scores: Sequence[float], sounding: Sequence, max_points: int | None = 200
) -> dict:
    """The ROC and PR curves behind :func:`discovery_report` as JSON-able lists (Fig. 5).

    ``roc``: ``fpr``, ``tpr`` and ``thresholds`` (scikit-learn's ``roc_curve``, collinear points
    dropped); point ``i`` calls a clip sounding when ``s ≥ thresholds[i]``. ``pr``:
    ``precision``, ``recall`` and ``thresholds`` (``precision_recall_curve``) with recall
    decreasing; the last point is scikit-learn's added ``(precision 1, recall 0)``. The
    threshold "above every score" (scikit-learn's ``inf`` for the first ROC point; none for the
    last PR point) is given as the next float above the highest score, so all three lists of a
    curve have the same length and every value is finite.

    Args:
        scores: ``[N]`` higher = more likely sounding.
        sounding: ``[N]`` bool or 0/1.
        max_points: Keep at most this many points per curve, evenly spaced by index, both
            endpoints kept (``None``: all). For saving next to results; the AUCs are computed
            on all points.

    Returns:
        ``{"roc": {"fpr", "tpr", "thresholds"}, "pr": {"precision", "recall", "thresholds"},
        "roc_auc", "pr_auc", "positive_rate", "n"}``.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    if max_points is not None and (int(max_points) != max_points or max_points < 2):
        raise DataError(f"max_points must be an integer ≥ 2 or None, got {max_points!r}")
    s, y = _check(scores, sounding)
    above = float(np.nextafter(s.max(), np.inf))
    fpr, tpr, roc_thr = roc_curve(y, s)
    roc_thr = np.where(np.isfinite(roc_thr), roc_thr, above)
    precision, recall, pr_thr = precision_recall_curve(y, s)
    pr_thr = np.append(pr_thr, above)
    r, p = _thin(len(fpr), max_points), _thin(len(precision), max_points)
    report = discovery_report(s, y)
    return {
        "roc": {
            "fpr": fpr[r].tolist(),
            "tpr": tpr[r].tolist(),
            "thresholds": roc_thr[r].tolist(),
        },
        "pr": {
            "precision": precision[p].tolist(),
            "recall": recall[p].tolist(),
            "thresholds": pr_thr[p].tolist(),
        },
        "roc_auc": report["roc_auc"],
        "pr_auc": report["pr_auc"],
        "positive_rate": report["positive_rate"],
        "n": report["n"],
    }
