"""Classification metrics as pure functions of label arrays (torchmetrics' functional style).

All take ``y_true`` and ``y_pred`` as equal-length sequences of class names (or ints) and an
optional ``classes`` list — the classes the metric averages over (default: the classes present
in ``y_true``). Gebhard et al. (2024) §4 report UA (main metric), WA and UP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_arrays(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(list(y_true), dtype=object), np.asarray(list(y_pred), dtype=object)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {len(t)} items but y_pred has {len(p)}")
    if t.size == 0:
        raise ValueError("metrics need at least one prediction")
    return t, p


def _mean_per_class(
    t: np.ndarray, p: np.ndarray, classes, condition: np.ndarray, outcome: np.ndarray
) -> float:
    """``1/|C| Σ_c P(outcome = c | condition = c)``, 0 for a class whose condition never holds:
    recall with ``condition=y_true``, precision with ``condition=y_pred``."""
    classes = sorted(set(t.tolist())) if classes is None else list(classes)
    rates = []
    for c in classes:
        held = condition == c
        rates.append(float(np.mean(outcome[held] == c)) if held.any() else 0.0)
    return float(np.mean(rates))


def unweighted_accuracy(
    y_true: Sequence, y_pred: Sequence, classes: Sequence | None = None
) -> float:
    """UA: the mean per-class recall (balanced accuracy).

    ``UA = 1/|C| Σ_{c∈C} |{i : y_i = c ∧ ŷ_i = c}| / |{i : y_i = c}|``, over the classes ``C``
    that occur in ``y_true`` (or the given ``classes``; a class without true items counts 0).
    """
    t, p = _as_arrays(y_true, y_pred)
    return _mean_per_class(t, p, classes, condition=t, outcome=p)


def weighted_accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """WA: plain accuracy, ``WA = 1/N Σ_i [ŷ_i = y_i]`` (per-class recall weighted by support)."""
    t, p = _as_arrays(y_true, y_pred)
    return float(np.mean(t == p))


def unweighted_precision(
    y_true: Sequence, y_pred: Sequence, classes: Sequence | None = None
) -> float:
    """UP: the mean per-class precision.

    ``UP = 1/|C| Σ_{c∈C} |{i : y_i = c ∧ ŷ_i = c}| / |{i : ŷ_i = c}|``, where a class that is
    never predicted has precision 0 (scikit-learn's ``zero_division=0``); ``C`` as for UA.
    """
    t, p = _as_arrays(y_true, y_pred)
    return _mean_per_class(t, p, classes, condition=p, outcome=t)


def classification_report(
    y_true: Sequence, y_pred: Sequence, classes: Sequence | None = None
) -> dict[str, float]:
    """``{"UA", "WA", "UP"}`` for one evaluation."""
    return {
        "UA": unweighted_accuracy(y_true, y_pred, classes),
        "WA": weighted_accuracy(y_true, y_pred),
        "UP": unweighted_precision(y_true, y_pred, classes),
    }


def chance_level(y_true: Sequence, n_candidates: int | None = None) -> dict[str, float]:
    """Expected UA/WA/UP of a uniform random guesser over the candidate classes.

    With ``K`` candidates, a uniform guesser has every per-class recall ``1/K``, so
    ``UA = WA = 1/K``; its expected precision for class ``c`` is the share of ``c`` among the
    items, so ``UP = 1/|C| Σ_c n_c/N = 1/|C|`` when every candidate occurs (``C`` = true classes).
    """
    t = list(y_true)
    present = len(set(t))
    k = n_candidates or present
    return {"UA": 1.0 / k, "WA": 1.0 / k, "UP": 1.0 / present}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std"}`` with the population standard deviation (ddof=0)."""
    arr = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std())}
