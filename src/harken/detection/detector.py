"""The detector: windows → scores → median smoothing → per-label thresholds → segments."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harken.detection.scoring import WindowScores, score_file
from harken.detection.segments import Segment, extract_segments, median_kernel, median_smooth
from harken.detection.windows import WindowSpec

#: Median-filter length in seconds by backend family. ``bridge``: chosen by ``harken bench
#: detect`` on its dev soundscapes (Kitchen20 folds 1–4). CLAP backends: one window (untuned
#: offline).
DEFAULT_SMOOTH = {"bridge": 1.0, "clap": 10.0, "msclap": 7.0}


def default_smooth(backend: str) -> float:
    """The documented default median length of a backend spec."""
    return DEFAULT_SMOOTH.get(backend.split(":", 1)[0], DEFAULT_SMOOTH["clap"])


@dataclass
class Timeline:
    """One recording's scores over time.

    Attributes:
        file: The recording as given.
        boundaries: ``[N + 1]`` frame boundaries in seconds.
        raw: ``[N, C]`` window scores.
        smoothed: ``[N, C]`` after the median filter (what thresholds compare against).
        duration: Seconds.
    """

    file: str
    boundaries: np.ndarray
    raw: np.ndarray
    smoothed: np.ndarray
    duration: float


class Detector:
    """Turns recordings into timelines and segments with fixed settings.

    Args:
        encoder: The backend's audio encoder.
        score: Encoder outputs ``[n, D]`` → window scores ``[n, C]``
            (:func:`~harken.detection.scoring.window_score_fn`).
        labels: The ``C`` candidate labels.
        spec: Window and hop.
        smooth: Median-filter length in seconds (0: none).
        thresholds: ``{label: θ}``; a segment is where the smoothed score is above ``θ``.
    """

    def __init__(
        self,
        encoder,
        score: Callable[[np.ndarray], np.ndarray],
        labels: Sequence[str],
        spec: WindowSpec,
        smooth: float,
        thresholds: Mapping[str, float],
    ) -> None:
        self.encoder = encoder
        self.score = score
        self.labels = list(labels)
        self.spec = spec
        self.smooth = float(smooth)
        self.kernel = median_kernel(self.smooth, spec.hop)
        self.thresholds = dict(thresholds)

    def timeline(self, path: str | Path) -> Timeline:
        """Score ``path`` (streamed) and smooth its scores."""
        got: WindowScores = score_file(self.encoder, path, self.spec, self.score)
        return self.smoothed(str(path), got)

    def smoothed(self, file: str, got: WindowScores) -> Timeline:
        """A timeline from already computed window scores."""
        return Timeline(
            file, got.boundaries, got.scores, median_smooth(got.scores, self.kernel), got.duration
        )

    def segments(self, timeline: Timeline) -> list[Segment]:
        return extract_segments(
            timeline.file, timeline.boundaries, timeline.smoothed, self.labels, self.thresholds
        )

    def settings(self) -> dict:
        return {
            "window_s": self.spec.window,
            "hop_s": self.spec.hop,
            "smooth_s": self.smooth,
            "median_frames": self.kernel,
            "thresholds": self.thresholds,
        }
