"""Window scoring streams the file: the encoder never sees more than one batch of windows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import harken.data.audio as audio
from harken.detection.scoring import BATCH_WINDOWS, score_file, window_score_fn
from harken.detection.windows import WindowSpec


class RecordingEncoder:
    """A stand-in audio encoder: each window's mean and RMS, and the largest input seen."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.largest = 0
        self.calls = 0

    def embed(self, batch):
        self.calls += 1
        self.largest = max(self.largest, sum(len(w) for w in batch))
        return np.array([[float(np.mean(w)), float(np.sqrt(np.mean(w**2)))] for w in batch])


def _long_wav(path, seconds: float) -> None:
    """A tone whose loudness steps every 10 s (written in pieces: never whole in memory)."""
    rate = 16000
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as f:
        for k in range(int(seconds // 10)):
            t = np.arange(10 * rate) / rate
            f.write((0.05 + 0.04 * (k % 2)) * np.sin(2 * np.pi * 440 * t))


@pytest.mark.parametrize("minutes", [2, 20])
def test_memory_is_flat_in_file_length(tmp_path, monkeypatch, minutes):
    path = tmp_path / "long.wav"
    _long_wav(path, minutes * 60)

    def no_whole_file(*args, **kwargs):
        raise AssertionError("detection must stream, not load the whole waveform")

    monkeypatch.setattr(audio, "load_audio", no_whole_file)
    enc = RecordingEncoder()
    spec = WindowSpec(1.0, 0.5)
    tracemalloc.start()
    try:
        got = score_file(enc, path, spec, lambda f: f[:, 1:2], block_seconds=30.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a few 30 s blocks (~2 MB each at 16 kHz float32), not the file (77 MB at 20 min)
    assert peak < 20e6
    n = 2 * minutes * 60 - 1  # every 0.5 s a window, the last full one ending at the end
    assert got.scores.shape == (n, 1)
    assert got.duration == pytest.approx(minutes * 60)
    # the largest array handed to the encoder: one batch of windows, whatever the length
    assert enc.largest == BATCH_WINDOWS * 16000
    # the scores follow the file over time: loud (0.09) and quiet (0.05) 10 s stretches
    centres = (got.boundaries[:-1] + got.boundaries[1:]) / 2
    loud = (centres // 10) % 2 == 1
    inside = np.abs(centres - np.round(centres / 10) * 10) > 1  # away from the steps
    np.testing.assert_allclose(got.scores[loud & inside, 0], 0.09 / np.sqrt(2), rtol=1e-3)
    np.testing.assert_allclose(got.scores[~loud & inside, 0], 0.05 / np.sqrt(2), rtol=1e-3)


class Space:
    def __init__(self, logit_scale, independent_logits=None):
        self.logit_scale = logit_scale
        # CLAP-like when it has a scale, unless told otherwise (the calibrated bridge)
        self.independent_logits = (
            logit_scale is not None if independent_logits is None else independent_logits
        )

    def scores(self, features, text):
        return features @ text.T * (self.logit_scale or 1.0)


def test_scores_are_per_label_never_a_softmax_over_labels():
    feats, text = np.array([[0.2, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(window_score_fn(Space(None), text)(feats), [[0.2, 0.0]])
    clap = window_score_fn(Space(10.0), text)(feats)
    np.testing.assert_allclose(clap, [[1 / (1 + np.exp(-2.0)), 0.5]])  # σ(λ·cos) per label
    assert clap.sum() != pytest.approx(1.0)
    # a softmax temperature (the calibrated bridge): the plain compatibility, λ taken off
    bridge = window_score_fn(Space(200.0, independent_logits=False), text)(feats)
    np.testing.assert_allclose(bridge, [[0.2, 0.0]])
