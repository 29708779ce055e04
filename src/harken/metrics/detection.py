"""Sound-event-detection metrics: thin wrappers over ``sed_scores_eval`` (Ebbers et al., 2022).

Inputs are the community's formats: per recording, a score table of contiguous frames
(:func:`score_table`: frame onsets/offsets and one score column per class) and a list of
ground-truth events ``(onset, offset, label)``. A class is *detected* in a frame when its
score is **above** the decision threshold (``score > θ``, as in ``sed_scores_eval``);
consecutive detected frames form one detected event.

* **Event-based F1 with collars** (Mesaros et al., 2016, "Metrics for polyphonic sound event
  detection", §2.2.2): a detected event matches a ground-truth event of the same class when
  ``|onset_det − onset_ref| ≤ onset_collar`` and
  ``|offset_det − offset_ref| ≤ max(offset_collar, offset_collar_rate · (offset_ref − onset_ref))``
  (each event matched at most once). Per class ``P = TP / (TP + FP)``, ``R = TP / N_ref``,
  ``F1 = 2PR / (P + R)``; the macro average is the mean of the per-class F1 (DCASE's
  event-based F1 uses 200 ms and 20 %).
* **PSDS** (Bilen et al., 2020, "A Framework for the Robust Evaluation of Sound Event
  Detection", Eq. 1–9; computed exactly as in Ebbers et al., 2022): detections count as true
  positives when at least ``dtc`` of their duration overlaps same-class ground truth and
  ground-truth events are detected when at least ``gtc`` of their duration is covered;
  over all thresholds, the per-class TPR vs. effective FPR (false positives per hour) curves
  give ``ROC_c``; PSDS is the area under ``mean_c ROC_c − α_st · std_c ROC_c`` up to
  ``max_efpr``, divided by ``max_efpr`` (in [0, 1]). :data:`PSDS1` are DCASE 2021–2023
  task 4's scenario-1 parameters (tight localisation).

Every class of a score table must have at least one ground-truth event (``sed_scores_eval``
refuses classes without events); restrict the tables to the annotated classes first
(:func:`restrict_classes`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

#: DCASE event-based F1: 200 ms onset collar, offset collar max(200 ms, 20 % of the event).
COLLARS = {"onset_collar": 0.2, "offset_collar": 0.2, "offset_collar_rate": 0.2}

#: DCASE 2021–2023 task 4 PSDS scenario 1 (Bilen et al., 2020, Table 1).
PSDS1 = {
    "dtc_threshold": 0.7,
    "gtc_threshold": 0.7,
    "cttc_threshold": None,
    "alpha_ct": 0.0,
    "alpha_st": 1.0,
    "max_efpr": 100.0,
}

Events = Mapping[str, Sequence[tuple[float, float, str]]]


@cache
def _score_table_class():
    import pandas as pd

    class ScoreTable(pd.DataFrame):
        """A score table whose ``to_numpy`` is writable.

        ``sed_scores_eval`` 0.0.4 hands ``DataFrame.to_numpy()`` to Cython code that needs
        writable buffers; under pandas ≥ 3 (copy-on-write) that array is a read-only view
        ("buffer source array is read-only"). Fixed upstream (fgnt/sed_scores_eval#17), not
        yet released; until then a copy is returned when the view is read-only.
        """

        @property
        def _constructor(self):
            return ScoreTable

        def to_numpy(self, *args, **kwargs):
            array = super().to_numpy(*args, **kwargs)
            return array if array.flags.writeable else array.copy()

    return ScoreTable


def _sed_scores_eval():
    """The ``sed_scores_eval`` package, imported without the ``pkg_resources`` deprecation
    warning that its ``sed_eval`` → ``dcase_util`` dependency raises on import (a dependency's
    packaging detail, nothing a user can act on; harken pins ``setuptools<81`` for it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="pkg_resources is deprecated", category=UserWarning
        )
        import sed_scores_eval
        import sed_scores_eval.base_modules.scores

    return sed_scores_eval


def score_table(boundaries: np.ndarray, scores: np.ndarray, labels: Sequence[str]):
    """A recording's scores as ``sed_scores_eval``'s table.

    Args:
        boundaries: ``[N + 1]`` increasing frame boundaries in seconds (frame ``i`` is
            ``[boundaries[i], boundaries[i + 1])``).
        scores: ``[N, C]`` per-frame class scores.
        labels: The ``C`` class names.

    Returns:
        A pandas DataFrame with columns ``onset``, ``offset`` and one per label.
    """
    create_score_dataframe = _sed_scores_eval().base_modules.scores.create_score_dataframe

    table = create_score_dataframe(
        np.asarray(scores, np.float64), np.asarray(boundaries, np.float64), list(labels)
    )
    return _score_table_class()(table)


def restrict_classes(tables: Mapping, labels: Sequence[str]) -> dict:
    """The score tables with only the ``labels`` columns (e.g. the annotated classes)."""
    keep = ["onset", "offset", *labels]
    return {key: table[keep] for key, table in tables.items()}


def _ground_truth(events: Events, tables: Mapping) -> dict:
    """Every scored recording's events (an empty list when it has none)."""
    return {key: [tuple(e) for e in events.get(key, [])] for key in tables}


def event_f1(
    tables: Mapping,
    events: Events,
    thresholds: float | Mapping[str, float],
    collars: Mapping[str, float] = COLLARS,
) -> dict:
    """Collar-based event F1 (see the module docstring) at fixed decision thresholds.

    Args:
        tables: ``{recording: score table}`` (:func:`score_table`).
        events: ``{recording: [(onset, offset, label), ...]}``.
        thresholds: One threshold for every class, or ``{label: threshold}``.
        collars: ``onset_collar``, ``offset_collar`` (s) and ``offset_collar_rate``
            (default :data:`COLLARS`).

    Returns:
        ``{"F1": macro F1, "F1_micro", "P", "R", "per_class": {label: {"F1", "P", "R",
        "tp", "fp", "n_ref"}}}``.
    """
    collar_based = _sed_scores_eval().collar_based

    if isinstance(thresholds, Mapping):
        thresholds = {k: float(v) for k, v in thresholds.items()}
    else:
        thresholds = float(thresholds)
    f, p, r, stats = collar_based.fscore(
        dict(tables), _ground_truth(events, tables), thresholds, **collars
    )
    per_class = {
        c: {
            "F1": float(f[c]),
            "P": float(p[c]),
            "R": float(r[c]),
            "tp": int(stats[c]["tps"]),
            "fp": int(stats[c]["fps"]),
            "n_ref": int(stats[c]["n_ref"]),
        }
        for c in stats
    }
    return {
        "F1": float(f["macro_average"]),
        "F1_micro": float(f["micro_average"]),
        "P": float(p["macro_average"]),
        "R": float(r["macro_average"]),
        "per_class": per_class,
    }


def macro_f1_at(tables: Mapping, events: Events, thresholds: Sequence[float]) -> list[float]:
    """Macro collar-based event F1 (:data:`COLLARS`) at each of several single thresholds.

    The same figures as :func:`event_f1` at each threshold; the detections' statistics are
    computed once (``sed_scores_eval``'s intermediate-statistics deltas) and read at every
    threshold.
    """
    collar_based = _sed_scores_eval().collar_based

    tables, truth = dict(tables), _ground_truth(events, tables)
    deltas = collar_based.intermediate_statistics_deltas(tables, truth, **COLLARS)
    return [
        float(
            collar_based.fscore(tables, truth, float(t), deltas=deltas, **COLLARS)[0][
                "macro_average"
            ]
        )
        for t in thresholds
    ]


def best_thresholds(tables: Mapping, events: Events) -> dict[str, dict]:
    """Per class, the decision threshold that maximises its collar-based event F1.

    ``sed_scores_eval.collar_based.best_fscore``: every distinct score is a candidate; the
    threshold returned lies halfway between the score that must still be detected and the
    next lower one (``-inf`` when detecting everything is best).

    Returns:
        ``{label: {"threshold", "F1", "P", "R"}}``.
    """
    collar_based = _sed_scores_eval().collar_based

    f, p, r, thresholds, _ = collar_based.best_fscore(
        dict(tables), _ground_truth(events, tables), **COLLARS
    )
    return {
        c: {
            "threshold": float(thresholds[c]),
            "F1": float(f[c]),
            "P": float(p[c]),
            "R": float(r[c]),
        }
        for c in thresholds
        if c not in ("macro_average", "micro_average")
    }


def psds(tables: Mapping, events: Events, durations: Mapping[str, float], **params) -> dict:
    """PSDS (see the module docstring) with :data:`PSDS1` unless ``params`` override it.

    Args:
        tables: ``{recording: score table}``.
        events: ``{recording: [(onset, offset, label), ...]}``.
        durations: ``{recording: seconds}``.

    Returns:
        ``{"PSDS": float, "per_class": {label: float}, "params": the parameters used}``.
    """
    intersection_based = _sed_scores_eval().intersection_based

    chosen = {**PSDS1, **params}
    value, per_class, *_ = intersection_based.psds(
        dict(tables),
        _ground_truth(events, tables),
        {k: float(durations[k]) for k in tables},
        unit_of_time="hour",
        **chosen,
    )
    return {
        "PSDS": float(value),
        "per_class": {c: float(v) for c, v in per_class.items()},
        "params": chosen,
    }
