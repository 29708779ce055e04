"""Generalised zero-shot metrics (S, U, HM, ZSL) and calibrated stacking — pure functions.

The audio-visual GZSL protocol (Mercea et al. 2022; Kurzendörfer et al. 2024, §4): test clips of
*seen* and *unseen* classes are classified among **all** classes; per-class accuracy is

    acc(C) = (1/|C|) Σ_{c∈C} (# clips of c predicted c) / (# clips of c)

and

* ``S``  = acc over the seen classes (seen test clips, all classes as candidates);
* ``U``  = acc over the unseen classes (unseen test clips, all classes as candidates);
* ``HM`` = 2·S·U / (S + U)  (0 when S = U = 0);
* ``ZSL`` = acc over the unseen classes with **only unseen classes** as candidates.

Calibrated stacking (Chao et al., 2016) removes the bias towards seen classes: a constant ``γ``
is subtracted from every seen-class *score* (equivalently added to seen-class *distances*
before the argmin, as ClipClap does) — for S, U and HM only; ZSL has no seen candidates.
``γ`` is chosen by HM on **validation** data (ClipClap's grid: 0 to 5, 76 steps);
:func:`select_calibration` only ever receives validation arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_GRID = tuple(np.linspace(0.0, 5.0, 76).round(6).tolist())


def per_class_accuracy(y_true: Sequence, y_pred: Sequence, classes: Sequence) -> float:
    """``(1/|C|) Σ_{c∈C} recall_c`` over the classes of ``classes`` that have clips."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    recalls = [np.mean(y_pred[y_true == c] == c) for c in classes if np.any(y_true == c)]
    if not recalls:
        raise ValueError("none of the given classes has a clip")
    return float(np.mean(recalls))


def harmonic_mean(s: float, u: float) -> float:
    """``HM = 2·S·U / (S + U)`` (0 when both are 0)."""
    return 0.0 if s + u == 0 else 2.0 * s * u / (s + u)


def calibrated_stacking(scores: np.ndarray, seen: np.ndarray, gamma: float) -> np.ndarray:
    """``scores − γ·1[c is seen]``: ``[N, C]`` scores, ``seen`` a bool ``[C]`` mask."""
    return np.asarray(scores, dtype=np.float64) - gamma * np.asarray(seen, dtype=np.float64)


def gzsl_report(
    scores: np.ndarray,
    labels: Sequence[str],
    class_names: Sequence[str],
    seen_classes: Sequence[str],
    gamma: float = 0.0,
) -> dict[str, float]:
    """``{"S", "U", "HM", "ZSL"}`` of one score matrix (see the module docstring).

    Args:
        scores: ``[N, C]`` scores (higher = better) of every clip for every class.
        labels: The true class of each clip.
        class_names: Column names of ``scores`` (seen and unseen classes).
        seen_classes: Which of ``class_names`` were seen in training.
        gamma: Calibrated-stacking constant (chosen on validation data).
    """
    names = list(class_names)
    seen = np.isin(names, list(seen_classes))
    labels_arr = np.asarray(labels, dtype=object)
    unknown = sorted(set(labels_arr) - set(names))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the class names")
    cols = np.asarray(names, dtype=object)
    pred = cols[np.argmax(calibrated_stacking(scores, seen, gamma), axis=1)]
    seen_names, unseen_names = cols[seen].tolist(), cols[~seen].tolist()
    is_seen_clip = np.isin(labels_arr, seen_names)
    s = per_class_accuracy(labels_arr[is_seen_clip], pred[is_seen_clip], seen_names)
    u = per_class_accuracy(labels_arr[~is_seen_clip], pred[~is_seen_clip], unseen_names)
    unseen_scores = np.asarray(scores)[~is_seen_clip][:, ~seen]
    zsl_pred = cols[~seen][np.argmax(unseen_scores, axis=1)]
    zsl = per_class_accuracy(labels_arr[~is_seen_clip], zsl_pred, unseen_names)
    return {"S": s, "U": u, "HM": harmonic_mean(s, u), "ZSL": zsl}


def select_calibration(
    val_scores: np.ndarray,
    val_labels: Sequence[str],
    class_names: Sequence[str],
    seen_classes: Sequence[str],
    grid: Sequence[float] = DEFAULT_GRID,
) -> tuple[float, float]:
    """The ``γ`` of ``grid`` with the best validation HM (first one on ties): ``(γ, HM)``.

    HM at each ``γ`` is :func:`gzsl_report`'s, computed on integer labels (per-class recalls
    by ``bincount``) because it runs once per grid value and epoch.
    """
    names = list(class_names)
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({y for y in val_labels if y not in index})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the class names")
    y = np.fromiter((index[v] for v in val_labels), dtype=np.int64, count=len(val_labels))
    seen = np.isin(names, list(seen_classes))
    counts = np.bincount(y, minlength=len(names))
    seen_cols, unseen_cols = seen & (counts > 0), ~seen & (counts > 0)
    if not seen_cols.any() or not unseen_cols.any():
        raise ValueError("validation needs clips of both seen and unseen classes")
    scores = np.asarray(val_scores, dtype=np.float64)
    offset = seen.astype(np.float64)
    best = (float(grid[0]), -1.0)
    for gamma in grid:
        pred = np.argmax(scores - gamma * offset, axis=1)
        hits = np.bincount(y, weights=(pred == y), minlength=len(names))
        recall = hits / np.maximum(counts, 1)
        hm = harmonic_mean(float(recall[seen_cols].mean()), float(recall[unseen_cols].mean()))
        if hm > best[1] + 1e-12:
            best = (float(gamma), hm)
    return best


def calibration_curve(
    scores: np.ndarray,
    labels: Sequence[str],
    class_names: Sequence[str],
    seen_classes: Sequence[str],
    grid: Sequence[float] = DEFAULT_GRID,
) -> dict[str, list[float]]:
    """S, U and HM at every ``γ`` of ``grid``: ``{"gamma", "S", "U", "HM"}`` (lists).

    The trade-off calibrated stacking makes (Chao et al. 2016, Fig. 2): raising ``γ`` moves
    clips from seen to unseen classes, so S falls and U rises. Per-class recalls as in
    :func:`gzsl_report`, over the classes that have clips.
    """
    names = list(class_names)
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({y for y in labels if y not in index})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the class names")
    y = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))
    seen = np.isin(names, list(seen_classes))
    counts = np.bincount(y, minlength=len(names))
    seen_cols, unseen_cols = seen & (counts > 0), ~seen & (counts > 0)
    scores = np.asarray(scores, dtype=np.float64)
    out: dict[str, list[float]] = {"gamma": [float(g) for g in grid], "S": [], "U": [], "HM": []}
    for gamma in grid:
        pred = np.argmax(scores - gamma * seen, axis=1)
        recall = np.bincount(y, weights=(pred == y), minlength=len(names)) / np.maximum(counts, 1)
        s = float(recall[seen_cols].mean()) if seen_cols.any() else 0.0
        u = float(recall[unseen_cols].mean()) if unseen_cols.any() else 0.0
        out["S"].append(s)
        out["U"].append(u)
        out["HM"].append(harmonic_mean(s, u))
    return out
