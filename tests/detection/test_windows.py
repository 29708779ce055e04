"""Windows cut from a stream of blocks, and the frames their scores are assigned to."""

from __future__ import annotations

import numpy as np
import pytest

from harken.detection.windows import Windower, WindowSpec, default_window, frame_boundaries
from harken.errors import ConfigError


def _cut(signal: np.ndarray, sizes: list[int], spec: WindowSpec, rate: int) -> Windower:
    windower = Windower(spec, rate)
    windows, at = [], 0
    for n in sizes:
        windows += windower.feed(signal[at : at + n])
        at += n
    windows += windower.finish()
    windower.windows = windows
    return windower


def test_windows_are_the_same_whatever_the_block_sizes():
    rate, signal = 10, np.arange(23, dtype=np.float32)
    spec = WindowSpec(1.0, 0.5)  # 10 samples, hop 5
    for sizes in ([23], [7, 7, 9], [1] * 23, [10, 13]):
        w = _cut(signal, sizes, spec, rate)
        assert w.starts == [0, 5, 10, 15]
        # full windows, then the last 8 samples no full window reached
        assert [x.tolist() for x in w.windows[:3]] == [
            list(range(0, 10)),
            list(range(5, 15)),
            list(range(10, 20)),
        ]
        assert w.windows[3].tolist() == list(range(15, 23))


def test_frames_are_contiguous_halfway_between_window_centres():
    rate, signal = 10, np.arange(23, dtype=np.float32)
    w = _cut(signal, [23], WindowSpec(1.0, 0.5), rate)
    # centres 0.5, 1.0, 1.5 and (1.5 + 2.3) / 2 = 1.9 for the short last window
    np.testing.assert_allclose(w.boundaries(), [0.0, 0.75, 1.25, 1.7, 2.3])


def test_no_extra_window_when_the_last_full_window_reaches_the_end():
    w = _cut(np.ones(20, np.float32), [20], WindowSpec(1.0, 0.5), 10)
    assert w.starts == [0, 5, 10] and len(w.windows) == 3
    np.testing.assert_allclose(w.boundaries(), [0.0, 0.75, 1.25, 2.0])


def test_a_recording_shorter_than_one_window_is_one_frame():
    w = _cut(np.ones(4, np.float32), [4], WindowSpec(1.0, 0.5), 10)
    assert w.starts == [0] and len(w.windows[0]) == 4
    np.testing.assert_allclose(w.boundaries(), [0.0, 0.4])


def test_frame_boundaries_of_non_overlapping_windows_are_the_windows():
    got = frame_boundaries(np.array([0.0, 5.0, 10.0]), 5.0, 15.0)
    np.testing.assert_allclose(got, [0, 5, 10, 15])


def test_bad_specs_are_refused_with_the_option_names():
    with pytest.raises(ConfigError, match=r"--hop 2\.0 is longer than --window 1\.0"):
        WindowSpec(1.0, 2.0)
    with pytest.raises(ConfigError, match="positive"):
        WindowSpec(0.0, 0.0)


def test_default_windows_by_backend_family():
    assert default_window("bridge") == WindowSpec(1.0, 0.5)
    assert default_window("clap:laion/clap-htsat-unfused") == WindowSpec(10.0, 5.0)
    assert default_window("msclap:2023") == WindowSpec(7.0, 3.5)
