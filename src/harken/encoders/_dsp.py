"""Signal-processing helpers shared by the spectrogram front ends of the audio encoders."""

from __future__ import annotations

import numpy as np


def hz_to_mel(f):
    """HTK mel scale: ``mel = 2595 · log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`: ``f = 700 · (10^(mel / 2595) − 1)``."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)
