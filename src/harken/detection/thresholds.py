"""Decision thresholds: documented defaults, or chosen per label on the user's own annotations.

A label may be absent from a recording, so a segment is emitted only where its score passes a
threshold. Without annotations every label gets the backend's default
(:data:`DEFAULT_THRESHOLDS`). With an annotations CSV (``file,start,end,label``: segments the
user marked on their own recordings), the recordings are scored by the same detector and each
annotated label gets the threshold that maximises its collar-based event F1 there
(:func:`harken.metrics.detection.best_thresholds`); labels without an annotated segment keep
the default.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from harken.errors import ConfigError, DataError

#: Default thresholds by backend family, on the score :mod:`~harken.detection.scoring`
#: gives. ``bridge``: chosen by ``harken bench detect`` (seeds 0, 1, 2) on its dev
#: soundscapes (Kitchen20 folds 1–4; never the test folds) as the single threshold with the
#: best macro event F1, with the default window (1 s / 0.5 s) and median (1 s) chosen there
#: too. Bridge compatibilities are small (a window's top-50 AudioSet mass times
#: ``max(cos − 0.3, 0)²``), hence 0.0108. CLAP backends: 0.5, the sigmoid's neutral point
#: (no CLAP weights offline to tune on; pass ``--thresholds-from``).
DEFAULT_THRESHOLDS = {"bridge": 0.0108, "clap": 0.5, "msclap": 0.5}

ANNOTATION_COLUMNS = ("file", "start", "end", "label")


def default_threshold(backend: str) -> float:
    """The documented default threshold of a backend spec (``bridge``, ``clap:<id>``, ...)."""
    return DEFAULT_THRESHOLDS.get(backend.split(":", 1)[0], DEFAULT_THRESHOLDS["clap"])


def read_annotations(
    path: str | Path, labels: Sequence[str]
) -> dict[str, list[tuple[float, float, str]]]:
    """Annotated segments ``file,start,end,label`` (seconds), grouped by file.

    Relative file paths are taken relative to the CSV's folder; keys are the files as
    resolved paths (strings).

    Raises:
        DataError: the CSV is missing or unreadable, lacks a column, or a row has a missing
            file, non-numeric or unordered times, or a label that is not a candidate (the
            row is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--thresholds-from {path}: file not found (a CSV file,start,end,label)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable UTF-8 CSV ({exc})") from exc
    missing = [c for c in ANNOTATION_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: needs the columns {list(ANNOTATION_COLUMNS)}; missing {missing} "
            "(or the file has no rows)"
        )
    known = set(labels)
    events: dict[str, list[tuple[float, float, str]]] = {}
    for i, row in enumerate(rows, 2):
        file = Path(row["file"].strip())
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            raise DataError(f"{path}, row {i}: {file} not found")
        try:
            start, end = float(row["start"]), float(row["end"])
        except ValueError:
            raise DataError(
                f"{path}, row {i}: start/end must be seconds, not {row['start']!r}/{row['end']!r}"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise DataError(f"{path}, row {i}: needs 0 ≤ start < end, got {start}, {end}")
        label = row["label"].strip()
        if label not in known:
            raise DataError(
                f"{path}, row {i}: label {label!r} is not one of the candidate labels "
                f"{sorted(known)}; add it with --labels or fix the row"
            )
        events.setdefault(str(file.resolve()), []).append((start, end, label))
    return events


def choose_thresholds(
    tables: Mapping,
    events: Mapping[str, Sequence[tuple[float, float, str]]],
    labels: Sequence[str],
    default: float,
) -> tuple[dict[str, float], dict[str, dict]]:
    """Per label, the event-F1-maximising threshold on annotated recordings (else ``default``).

    Args:
        tables: ``{file: score table}`` of the annotated recordings (smoothed, as detected).
        events: ``{file: [(start, end, label), ...]}``.
        labels: Every candidate label.
        default: Threshold of labels without annotated segments.

    Returns:
        ``({label: threshold}, {label: {"threshold", "F1", "P", "R", "chosen_on"}})``.

    Raises:
        ConfigError: no annotated label is among ``labels``.
    """
    from harken.metrics.detection import best_thresholds, restrict_classes

    annotated = [c for c in labels if any(e[2] == c for evs in events.values() for e in evs)]
    if not annotated:
        raise ConfigError("the annotations mark none of the candidate labels")
    best = best_thresholds(restrict_classes(tables, annotated), events)
    thresholds, report = {}, {}
    for label in labels:
        if label in best:
            thresholds[label] = best[label]["threshold"]
            report[label] = {**best[label], "chosen_on": "annotations (max event F1)"}
        else:
            thresholds[label] = default
            report[label] = {"threshold": default, "chosen_on": "default (not annotated)"}
    return thresholds, report
