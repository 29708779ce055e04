"""Smoothing, thresholds and segments on exact small cases."""

from __future__ import annotations

import numpy as np
import pytest

from harken.detection.segments import (
    Segment,
    extract_segments,
    median_kernel,
    median_smooth,
    top_label_only,
)
from harken.errors import ConfigError

B = np.arange(0.0, 7.0)  # six 1 s frames


def test_segments_are_runs_above_threshold_merged_across_adjacent_windows():
    scores = np.array([[0.1, 0.0], [0.6, 0.0], [0.7, 0.9], [0.2, 0.9], [0.8, 0.1], [0.9, 0.1]])
    got = extract_segments("a.wav", B, scores, ["x", "y"], {"x": 0.5, "y": 0.5})
    assert got == [
        Segment("a.wav", 1.0, 3.0, "x", 0.7),
        Segment("a.wav", 2.0, 4.0, "y", 0.9),
        Segment("a.wav", 4.0, 6.0, "x", 0.9),  # runs to the end of the file
    ]


def test_threshold_is_strict_and_per_label():
    scores = np.array([[0.5, 0.5], [0.6, 0.6]])
    got = extract_segments("a", B[:3], scores, ["x", "y"], {"x": 0.5, "y": 0.6})
    assert got == [Segment("a", 1.0, 2.0, "x", 0.6)]  # 0.5 is not above 0.5; y never above 0.6


def test_segment_boundaries_follow_the_frames_at_the_file_end():
    bounds = np.array([0.0, 0.75, 1.25, 1.7, 2.3])
    scores = np.array([[0.0], [0.0], [1.0], [1.0]])
    (seg,) = extract_segments("f", bounds, scores, ["x"], {"x": 0.5})
    assert (seg.start, seg.end) == (1.25, 2.3)


def test_median_smoothing_removes_short_blips_and_fills_short_gaps():
    x = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1], float)[:, None]
    got = median_smooth(x, 3)[:, 0]
    assert got.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_median_edges_repeat_the_first_and_last_frames():
    x = np.array([[1.0], [0.0], [0.0], [2.0], [3.0]])
    # padded: 1 1 [1 0 0 2 3] 3 3
    assert median_smooth(x, 5)[:, 0].tolist() == [1.0, 1.0, 1.0, 2.0, 3.0]


def test_median_kernel_in_seconds():
    assert median_kernel(0.0, 0.5) == 1
    assert median_kernel(2.0, 0.5) == 5  # 4 frames → odd 5
    assert median_kernel(1.5, 0.5) == 3
    with pytest.raises(ConfigError, match="--smooth"):
        median_kernel(-1.0, 0.5)
    with pytest.raises(ConfigError, match="odd"):
        median_smooth(np.zeros((3, 1)), 2)


def test_top_label_only_keeps_each_frames_best_label():
    got = top_label_only(np.array([[0.1, 0.3], [0.5, 0.2]]))
    assert got.tolist() == [[-np.inf, 0.3], [0.5, -np.inf]]
