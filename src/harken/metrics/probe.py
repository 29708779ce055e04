"""Single-label classification metrics of a score matrix: EPIC-SOUNDS' Top-1, Top-5, mCA, mAP
and mAUC (Huh et al. 2023; Chen et al. 2024, §6.3, Table 4).

All averages over classes are over the classes **present in** ``y_true`` — as the EPIC-SOUNDS
evaluation code does (``slowfast/utils/metrics.py``: per-class accuracy over rows of the
confusion matrix with a non-zero count; mAP and mAUC after dropping the score columns of classes
without a test clip). Classes a model can predict but the test set lacks change only Top-k.
Every value is a fraction in [0, 1] (Table 4 prints Top-1, Top-5 and mCA in %).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harken.errors import DataError


def _targets(scores, y_true, classes) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = list(y_true)
    if s.ndim != 2 or s.shape[0] != len(y):
        raise DataError(
            f"scores {s.shape} must be a [N, C] matrix with one row per label ({len(y)} labels)"
        )
    if s.size == 0:
        raise DataError("classification metrics need at least one clip and one class")
    bad = np.flatnonzero(~np.isfinite(s).all(axis=1))
    if bad.size:
        raise DataError(f"scores row {int(bad[0])} is not finite ({bad.size} rows in all)")
    if classes is None:
        index = {c: c for c in range(s.shape[1])}
        hint = "without classes, labels are column indices 0..C-1"
    else:
        classes = list(classes)
        if len(classes) != s.shape[1]:
            raise DataError(f"{len(classes)} classes for {s.shape[1]} score columns")
        if len(set(classes)) != len(classes):
            raise DataError("classes must be distinct (one per score column)")
        index = {c: k for k, c in enumerate(classes)}
        hint = "labels must be among the classes (the score columns)"
    t = np.empty(len(y), dtype=np.int64)
    for i, label in enumerate(y):
        k = index.get(label.item() if isinstance(label, np.generic) else label)
        if k is None:
            raise DataError(f"y_true row {i}: label {label!r} has no score column; {hint}")
        t[i] = k
    return s, t


def _topk_hits(s: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Whether the true column is among each row's ``k`` best (stable: ties by column index)."""
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return (order == t[:, None]).any(axis=1)


def probe_report(scores, y_true: Sequence, classes: Sequence | None = None) -> dict:
    """Top-1, Top-5, mCA, mAP and mAUC of single-label scores (EPIC-SOUNDS, Table 4).

    With ``ŷ_i^k`` the ``k`` best-scored classes of clip ``i`` (ties broken by column index),
    ``P`` the classes present in ``y_true`` and ``y_ic = [y_i = c]``:

    * ``top1 = 1/N Σ_i [y_i ∈ ŷ_i^1]``; ``top5`` the same with ``k = min(5, C)``;
    * ``mca = 1/|P| Σ_{c∈P} |{i : y_i = c, ŷ_i^1 = {c}}| / |{i : y_i = c}|`` (mean class
      accuracy: mean per-class top-1 recall);
    * ``map = 1/|P| Σ_{c∈P} AP(y_·c, s_·c)``, one-vs-rest average precision of column ``c``
      (scikit-learn's ``average_precision_score``, step-wise);
    * ``mauc = 1/|P'| Σ_{c∈P'} AUC(y_·c, s_·c)``, one-vs-rest ROC-AUC over the classes ``P'``
      with both positives and negatives (all of ``P`` when two or more classes are present).

    Args:
        scores: ``[N, C]`` class scores (probabilities or any monotone score), higher = better.
        y_true: ``[N]`` true labels: members of ``classes`` or, without ``classes``, column
            indices.
        classes: The class of each score column.

    Returns:
        ``{"top1", "top5", "mca", "map", "mauc", "n", "classes_present", "top5_k"}``.

    Raises:
        DataError: shapes disagree, a score is not finite, a label has no column, or fewer
            than two classes are present (mAUC undefined).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, t = _targets(scores, y_true, classes)
    present = np.unique(t)
    if present.size < 2:
        raise DataError(
            f"y_true has {present.size} class only; one-vs-rest ROC-AUC (mAUC) needs two or "
            "more classes in the evaluation set"
        )
    k5 = min(5, s.shape[1])
    top1 = _topk_hits(s, t, 1)
    onehot = t[:, None] == present[None, :]
    return {
        "top1": float(top1.mean()),
        "top5": float(_topk_hits(s, t, k5).mean()),
        "mca": float(np.mean([top1[t == c].mean() for c in present])),
        "map": float(
            np.mean([average_precision_score(onehot[:, j], s[:, c]) for j, c in enumerate(present)])
        ),
        "mauc": float(
            np.mean([roc_auc_score(onehot[:, j], s[:, c]) for j, c in enumerate(present)])
        ),
        "n": len(t),
        "classes_present": int(present.size),
        "top5_k": k5,
    }


def probe_chance(y_train: Sequence, y_test: Sequence, classes: Sequence) -> dict:
    """The :func:`probe_report` of a scorer that ignores the clip: every test clip gets the
    training prior ``p_c = |{i ∈ train : y_i = c}| / N_train`` as its scores.

    So Top-1 is the test share of the majority training class, Top-5 that of the five most
    frequent training classes (ties by ``classes`` order), mCA ``= [majority ∈ P] / |P|``,
    each class's AP the positive rate of that class (a constant score), hence
    ``mAP = 1/|P| Σ_c n_c/N = 1/|P|``, and mAUC 0.5.

    Args:
        y_train: Training labels (members of ``classes``).
        y_test: Test labels (members of ``classes``).
        classes: All classes, in column order.
    """
    classes = list(classes)
    _, t = _targets(np.zeros((len(list(y_train)), len(classes))), y_train, classes)
    if t.size == 0:
        raise DataError("probe_chance needs at least one training label")
    prior = np.bincount(t, minlength=len(classes)) / t.size
    y_test = list(y_test)
    return probe_report(np.tile(prior, (len(y_test), 1)), y_test, classes)
