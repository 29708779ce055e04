"""Overlapping analysis windows over a stream of samples, and the frames they score.

Windows of ``window`` seconds start every ``hop`` seconds from 0 and are cut from the decoded
blocks as they arrive (:class:`Windower`), so memory holds one block plus one window whatever
the recording's length. A last, shorter window covers samples no full window reached (the
encoder pads it as it pads any short clip).

Each window's score is assigned to a *frame*: frame ``i`` spans from halfway between the
centres of windows ``i − 1`` and ``i`` to halfway between those of ``i`` and ``i + 1``
(the first starts at 0, the last ends at the end of the recording; a window's centre is the
centre of the samples it holds). Frames are contiguous and ``hop`` long inside the
recording — the timeline segments and the SED metrics read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harken.errors import ConfigError

#: Window / hop defaults in seconds by backend family: the tagger's own receptive field for
#: ``bridge`` (YAMNet: 0.96 s patches; 1 s / 0.5 s also won over 2 s / 1 s on ``harken bench
#: detect``'s dev soundscapes), each CLAP model's training window (LAION-CLAP 10 s, MS-CLAP
#: 2023 7 s) with 50 % overlap.
DEFAULT_WINDOWS = {"bridge": (1.0, 0.5), "clap": (10.0, 5.0), "msclap": (7.0, 3.5)}


@dataclass(frozen=True)
class WindowSpec:
    """Window length and hop in seconds (``0 < hop ≤ window``)."""

    window: float
    hop: float

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.hop > 0):
            raise ConfigError(
                f"--window {self.window} and --hop {self.hop} must be positive seconds"
            )
        if self.hop > self.window:
            raise ConfigError(
                f"--hop {self.hop} is longer than --window {self.window}: parts of the "
                "recording would never be scored; use a hop of at most the window"
            )


def default_window(backend: str) -> WindowSpec:
    """The documented default window of a backend spec (``bridge``, ``clap:<id>``, ...)."""
    family = backend.split(":", 1)[0]
    window, hop = DEFAULT_WINDOWS.get(family, DEFAULT_WINDOWS["clap"])
    return WindowSpec(window, hop)


class Windower:
    """Cut consecutive sample blocks into overlapping windows (see the module docstring).

    Args:
        spec: Window and hop.
        sample_rate: Samples per second of the blocks.
    """

    def __init__(self, spec: WindowSpec, sample_rate: int) -> None:
        self.size = max(1, round(spec.window * sample_rate))
        self.step = max(1, round(spec.hop * sample_rate))
        self.rate = sample_rate
        self.samples = 0  # samples fed so far
        self.starts: list[int] = []  # start sample of every window cut
        self._buf = np.zeros(0, np.float32)
        self._pos = 0  # sample index of _buf[0]

    def feed(self, block: np.ndarray) -> list[np.ndarray]:
        """The full windows completed by ``block`` (copies; the buffer keeps the rest)."""
        block = np.asarray(block, np.float32).reshape(-1)
        self.samples += len(block)
        self._buf = np.concatenate([self._buf, block])
        out = []
        offset = 0
        while len(self._buf) - offset >= self.size:
            out.append(self._buf[offset : offset + self.size].copy())
            self.starts.append(self._pos + offset)
            offset += self.step
        self._buf = self._buf[offset:].copy()
        self._pos += offset
        return out

    def finish(self) -> list[np.ndarray]:
        """The last, shorter window, when samples remain that no window covered."""
        covered = self.starts[-1] + self.size if self.starts else 0
        if self.samples == 0 or self.samples <= covered:
            return []
        self.starts.append(self._pos)
        return [self._buf.copy()]

    def boundaries(self) -> np.ndarray:
        """``[N + 1]`` frame boundaries in seconds of the windows cut so far."""
        return frame_boundaries(
            np.asarray(self.starts, np.float64) / self.rate,
            self.size / self.rate,
            self.samples / self.rate,
        )


def frame_boundaries(starts: np.ndarray, window: float, duration: float) -> np.ndarray:
    """Frame boundaries (see the module docstring) of windows starting at ``starts`` seconds.

    Args:
        starts: ``[N]`` increasing window starts in seconds.
        window: Window length in seconds.
        duration: Length of the recording in seconds.

    Returns:
        ``[N + 1]`` boundaries: 0, the midpoints of consecutive window centres, ``duration``.
    """
    starts = np.asarray(starts, np.float64)
    centres = (starts + np.minimum(starts + window, duration)) / 2
    return np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [float(duration)]])
