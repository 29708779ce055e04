"""From per-frame scores to segments: median smoothing over time and thresholding.

Pure functions of arrays. A label is *on* in a frame when its (smoothed) score is above its
threshold (``score > θ``, the convention of ``sed_scores_eval``, so that the thresholds it
picks reproduce its detections); a run of consecutive *on* frames — adjacent windows above
threshold — is one segment from the first frame's start to the last frame's end, scored by
the highest score inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from harken.errors import ConfigError


@dataclass(frozen=True)
class Segment:
    """One detected segment of a recording: ``label`` from ``start`` to ``end`` seconds."""

    file: str
    start: float
    end: float
    label: str
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def median_kernel(seconds: float, hop: float) -> int:
    """Frames of a median filter ``seconds`` long at ``hop`` seconds per frame: the nearest
    odd number of frames (at least 1; 1 = no smoothing)."""
    if seconds < 0:
        raise ConfigError(f"--smooth {seconds} must be 0 (no smoothing) or more seconds")
    n = max(1, round(seconds / hop))
    return n if n % 2 else n + 1


def median_smooth(scores: np.ndarray, kernel: int) -> np.ndarray:
    """Running median over time of ``[N, C]`` scores, ``kernel`` (odd) frames wide.

    ``y[i, c] = median(x[i − k .. i + k, c])`` with ``k = (kernel − 1) / 2``; the first and
    last frame are repeated at the edges (so a recording's first and last segments keep
    their length). The standard post-processing of frame-level SED scores (e.g. the DCASE
    task 4 baselines' median filter).
    """
    scores = np.asarray(scores, np.float64)
    if kernel % 2 == 0 or kernel < 1:
        raise ConfigError(f"the median filter needs an odd number of frames, not {kernel}")
    if kernel == 1 or len(scores) == 0:
        return scores.copy()
    half = kernel // 2
    padded = np.pad(scores, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=0)
    return np.median(windows, axis=-1)


def extract_segments(
    file: str,
    boundaries: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    thresholds: Mapping[str, float],
) -> list[Segment]:
    """Segments where each label's score is above its threshold.

    Args:
        file: The recording (copied into each segment).
        boundaries: ``[N + 1]`` frame boundaries in seconds.
        scores: ``[N, C]`` frame scores (already smoothed).
        labels: The ``C`` labels.
        thresholds: ``{label: θ}`` for every label.

    Returns:
        Segments sorted by start, then label.
    """
    scores = np.asarray(scores, np.float64)
    out = []
    for c, label in enumerate(labels):
        on = scores[:, c] > thresholds[label]
        for first, last in _runs(on):
            out.append(
                Segment(
                    file=file,
                    start=round(float(boundaries[first]), 3),
                    end=round(float(boundaries[last + 1]), 3),
                    label=label,
                    score=float(scores[first : last + 1, c].max()),
                )
            )
    return sorted(out, key=lambda s: (s.start, s.label))


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` frame indices of each run of True values."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    firsts = np.flatnonzero(edges == 1)
    lasts = np.flatnonzero(edges == -1) - 1
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def top_label_only(scores: np.ndarray) -> np.ndarray:
    """``[N, C]`` scores with everything but each frame's best label set to −inf (ties: the
    first label): a single-label decision per frame, as a classifier run per window makes."""
    scores = np.asarray(scores, np.float64)
    out = np.full_like(scores, -np.inf)
    if len(scores):
        best = np.argmax(scores, axis=1)
        out[np.arange(len(scores)), best] = scores[np.arange(len(scores)), best]
    return out
