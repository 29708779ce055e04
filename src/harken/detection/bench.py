"""``harken bench detect``: the detector on soundscapes of real clips, beside a baseline.

Protocol (training-free, zero-shot: the candidate labels are the dataset's class names):

1. **Soundscapes** (:mod:`~harken.detection.soundscapes`) per seed: a *dev* set from
   Kitchen20 folds :data:`DEV_FOLDS` and a *test* set from folds :data:`TEST_FOLDS`; the
   folds never share a clip.
2. **Choices on dev only**: for every window/hop and median length of the backend's grid
   (:data:`GRIDS`), the dev soundscapes are scored through the streaming detector and the
   single threshold that maximises dev macro event F1 is found; the best (window, hop,
   smoothing, threshold) is kept. Per-label thresholds are also chosen on the dev
   annotations (what ``--thresholds-from`` does with a user's annotations).
3. **Test**: the test soundscapes are scored once with the chosen settings; event F1
   (collar 200 ms / 20 %) and PSDS (DCASE scenario 1) through ``sed_scores_eval``
   (:mod:`harken.metrics.detection`).
4. **Baseline**: fixed, non-overlapping windows of the clip length (:data:`BASELINE`), no
   smoothing, the top label of each window emitted (a classifier run window by window):
   every window gets exactly one label, event or not. Its PSDS uses each window's top-label
   score (other labels never fire before it).

A split's metrics are over the classes that have an event in it (``sed_scores_eval`` needs
at least one per class; with every Kitchen20 class in each set this is all of them).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from harken.detection.detector import Detector, Timeline
from harken.detection.scoring import WindowScores, score_file
from harken.detection.segments import top_label_only
from harken.detection.windows import WindowSpec
from harken.errors import DataError

DEV_FOLDS = (1, 2, 3, 4)
TEST_FOLDS = (5, 6, 7, 8, 9)

#: Settings tried on dev, by backend family: (window, hop) pairs and median lengths (s).
GRIDS = {
    "bridge": {
        "windows": [(1.0, 0.5), (2.0, 1.0)],
        "smooth": [0.0, 1.0, 2.0, 3.0, 5.0],
    },
    "clap": {"windows": [(10.0, 5.0), (5.0, 2.5)], "smooth": [0.0, 5.0, 10.0]},
    "msclap": {"windows": [(7.0, 3.5), (4.0, 2.0)], "smooth": [0.0, 4.0, 8.0]},
}

#: The fixed-window baseline: Kitchen20's clip length, no overlap.
BASELINE = WindowSpec(5.0, 5.0)

#: Baseline scores of the labels a window did not pick: below every backend's scores (≥ 0).
NOT_PICKED = -1.0

#: Threshold candidates per configuration: quantiles of the dev scores.
THRESHOLD_QUANTILES = np.linspace(0.5, 0.995, 30)

#: A looser collar reported beside DCASE's (1 s onset and offset, or 20 % of the event):
#: window-level systems place boundaries on a grid of their hop (0.5 s and more).
LOOSE_COLLARS = {"onset_collar": 1.0, "offset_collar": 1.0, "offset_collar_rate": 0.2}


def grid(backend: str) -> dict:
    return GRIDS.get(backend.split(":", 1)[0], GRIDS["clap"])


def kitchen20_clips(root: Path, folds: Sequence[int]) -> list[tuple[str, str]]:
    """``(path, label)`` of the Kitchen20 clips in ``folds`` (``root/labels.csv``).

    Raises:
        DataError: the folder has no ``labels.csv``.
    """
    labels_csv = Path(root) / "labels.csv"
    if not labels_csv.is_file():
        raise DataError(
            f"{labels_csv} not found: give the Kitchen20 folder's parent with --data-dir "
            "(or $HARKEN_DATA_DIR)"
        )
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    wanted = {str(k) for k in folds}
    return [(str(Path(root) / r["path"]), r["label"]) for r in rows if r["fold"] in wanted]


def tables(timelines: Sequence[Timeline], labels: Sequence[str], raw: bool = False) -> dict:
    """``{file: score table}`` of timelines (smoothed scores unless ``raw``)."""
    from harken.metrics.detection import score_table

    return {
        t.file: score_table(t.boundaries, t.raw if raw else t.smoothed, labels) for t in timelines
    }


def present(events: Mapping[str, Sequence], labels: Sequence[str]) -> list[str]:
    """The labels with at least one event, in candidate order."""
    seen = {e[2] for evs in events.values() for e in evs}
    return [c for c in labels if c in seen]


def evaluate(
    tabs: Mapping, events: Mapping, durations: Mapping, labels: Sequence[str], thresholds
) -> dict:
    """Event F1 at ``thresholds`` and PSDS over the classes with events (see the module
    docstring)."""
    from harken.metrics.detection import event_f1, psds, restrict_classes

    classes = present(events, labels)
    tabs = restrict_classes(tabs, classes)
    if isinstance(thresholds, Mapping):
        thresholds = {c: thresholds[c] for c in classes}
    f1 = event_f1(tabs, events, thresholds)
    scenario1 = psds(tabs, events, durations)
    return {
        "event_F1": f1["F1"],
        "event_P": f1["P"],
        "event_R": f1["R"],
        "event_F1_micro": f1["F1_micro"],
        "event_F1_1s_collar": event_f1(tabs, events, thresholds, LOOSE_COLLARS)["F1"],
        "PSDS1": scenario1["PSDS"],
        "PSDS1_mean_over_classes": psds(tabs, events, durations, alpha_st=0.0)["PSDS"],
        "classes": len(classes),
        "per_class_F1": {c: v["F1"] for c, v in f1["per_class"].items()},
    }


def best_global_threshold(tabs: Mapping, events: Mapping, labels: Sequence[str]) -> dict:
    """The single threshold (among quantiles of the scores) with the best macro event F1."""
    from harken.metrics.detection import macro_f1_at, restrict_classes

    classes = present(events, labels)
    tabs = restrict_classes(tabs, classes)
    values = np.concatenate([t[classes].to_numpy().ravel() for t in tabs.values()])
    candidates = np.unique(np.round(np.quantile(values, THRESHOLD_QUANTILES), 6))
    f1 = macro_f1_at(tabs, events, candidates)
    best = int(np.argmax(f1))  # the first (lowest) threshold on ties
    return {"threshold": float(candidates[best]), "F1": f1[best]}


def score_all(encoder, paths: Sequence[str], spec: WindowSpec, score) -> dict[str, WindowScores]:
    """Every recording scored through the streaming detector path."""
    return {p: score_file(encoder, p, spec, score) for p in paths}


def baseline_timelines(scored: Mapping[str, WindowScores]) -> list[Timeline]:
    """The baseline's timelines: each window's top label keeps its score, others
    :data:`NOT_PICKED`."""
    out = []
    for path, got in scored.items():
        top = top_label_only(got.scores)
        top[np.isneginf(top)] = NOT_PICKED
        out.append(Timeline(path, got.boundaries, top, top, got.duration))
    return out


def tune(
    encoder, score, events: Mapping, labels: Sequence[str], backend: str
) -> tuple[dict, list[dict], dict[str, WindowScores]]:
    """Choose window/hop, smoothing and one threshold on the dev soundscapes.

    Returns:
        ``(chosen, tried, scored)``: the best configuration (by dev macro event F1; ties: the
        first tried), every configuration with its dev F1 and threshold, and the dev
        recordings' window scores at the chosen window/hop.
    """
    options = grid(backend)
    tried, kept = [], {}
    for window, hop in options["windows"]:
        spec = WindowSpec(window, hop)
        scored = kept[(window, hop)] = score_all(encoder, list(events), spec, score)
        for smooth in options["smooth"]:
            det = Detector(encoder, score, labels, spec, smooth, {})
            timelines = [det.smoothed(p, got) for p, got in scored.items()]
            best = best_global_threshold(tables(timelines, labels), events, labels)
            tried.append(
                {"window_s": window, "hop_s": hop, "smooth_s": smooth, **best, "dev_F1": best["F1"]}
            )
    chosen = max(tried, key=lambda r: r["dev_F1"])
    return chosen, tried, kept[(chosen["window_s"], chosen["hop_s"])]


def results_markdown(results: dict) -> str:
    """The benchmark's table: detector and baseline, dev and test."""
    c = results["chosen_on_dev"]
    lines = [
        f"# detection on Kitchen20 soundscapes — backend `{results['backend']}`",
        "",
        f"Seeds {results['seeds']}; dev: folds {results['split']['dev_folds']} "
        f"({results['split']['dev_soundscapes']} soundscapes), test: folds "
        f"{results['split']['test_folds']} ({results['split']['test_soundscapes']}). "
        f"Chosen on dev: window {c['window_s']} s, hop {c['hop_s']} s, median "
        f"{c['smooth_s']} s, threshold {c['threshold']:.4g}. Event F1: collar 200 ms / 20 %, "
        "macro over classes; PSDS: DCASE scenario 1 (sed_scores_eval). Beside them: "
        "event F1 with 1 s collars and PSDS1 without the cross-class spread penalty.",
        "",
        "| system | split | event F1 | P | R | PSDS1 | F1, 1 s collar | PSDS1, α_st = 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["table"]:
        lines.append(
            f"| {row['system']} | {row['split']} | {row['event_F1']:.3f} | {row['event_P']:.3f} "
            f"| {row['event_R']:.3f} | {row['PSDS1']:.3f} | {row['event_F1_1s_collar']:.3f} "
            f"| {row['PSDS1_mean_over_classes']:.3f} |"
        )
    return "\n".join(lines) + "\n"
