"""Score a recording window by window, streaming it in bounded memory.

The file is decoded block by block (:func:`~harken.data.audio.stream_audio`, audio files and
the audio track of videos), cut into overlapping windows (:class:`~harken.detection.windows.
Windower`), and every ``batch`` windows are embedded by the backend's audio encoder (the same
``encoder.embed`` call ``predict`` makes on a clip) and scored against the labels at once.
Memory holds one decoded block, one batch of windows and the ``[N, C]`` score matrix; the
largest array an encoder sees is ``batch × window`` samples, whatever the file's length.

What the per-window score is (:func:`window_score_fn`):

* ``bridge``: the compatibility ``a(x)ᵀ u(t)`` (:class:`~harken.methods.joint.BridgeSpace`):
  the mass of the window's top-``T`` AudioSet posteriors on tags related to the label text.
* CLAP backends: ``σ(λ · cos(E_a, E_t))``, the sigmoid of the model's logit — each label's
  own presence probability (the multi-label reading of CLAP's Eq. 1).

No softmax over labels: a softmax makes the labels of a window compete for a total of 1, so a
window holding none of them (silence, an unlisted sound) still gives some label a high
score, and two labels sounding together split it. Detection asks, per label, whether it is
present, which independent per-label scores answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harken.data.audio import STREAM_BLOCK_SECONDS, stream_audio
from harken.detection.windows import Windower, WindowSpec

#: Windows embedded per encoder call.
BATCH_WINDOWS = 16


@dataclass
class WindowScores:
    """A recording's per-window scores.

    Attributes:
        boundaries: ``[N + 1]`` frame boundaries in seconds (one frame per window).
        scores: ``[N, C]`` float64 scores.
        duration: Seconds of audio decoded.
    """

    boundaries: np.ndarray
    scores: np.ndarray
    duration: float


def window_score_fn(space, class_embeddings: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The function from audio-encoder outputs ``[n, D]`` to ``[n, C]`` window scores (see the
    module docstring): the sigmoid of the logit where the space's logits are learnt per label
    (CLAP: :attr:`~harken.methods.joint.JointSpace.independent_logits`), else the plain
    compatibility ``a(x)ᵀu(t)`` (the bridge; its ``λ``, a softmax temperature over the
    candidates, is not applied: a window may hold none of the labels)."""
    from harken.methods.joint import sigmoid

    independent = getattr(space, "independent_logits", False)
    unscale = 1.0 if independent else 1.0 / (space.logit_scale or 1.0)

    def score(features: np.ndarray) -> np.ndarray:
        s = np.asarray(space.scores(features, class_embeddings), np.float64)
        return sigmoid(s) if independent else s * unscale

    return score


def score_kind(space) -> str:
    """What :func:`window_score_fn` returns for ``space`` (recorded with every result)."""
    if getattr(space, "independent_logits", False):
        return "sigmoid probability σ(λ·cos) per label"
    return "bridge compatibility a(x)ᵀu(t) (not a probability)"


def score_blocks(
    encoder,
    blocks: Iterable[np.ndarray],
    spec: WindowSpec,
    score: Callable[[np.ndarray], np.ndarray],
    batch: int = BATCH_WINDOWS,
) -> WindowScores:
    """Score a stream of mono blocks at ``encoder.sample_rate`` (see the module docstring).

    Args:
        encoder: Audio encoder (``embed(list of waves) -> [n, D]``, ``sample_rate``).
        blocks: Consecutive mono float32 blocks.
        spec: Window and hop.
        score: ``[n, D]`` encoder outputs → ``[n, C]`` scores.
        batch: Windows per encoder call.
    """
    windower = Windower(spec, encoder.sample_rate)
    pending: list[np.ndarray] = []
    parts: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            parts.append(np.asarray(score(np.asarray(encoder.embed(pending))), np.float64))
            pending.clear()

    for block in blocks:
        for window in windower.feed(block):
            pending.append(window)
            if len(pending) >= batch:
                flush()
    pending += windower.finish()
    flush()
    scores = np.concatenate(parts) if parts else np.zeros((0, 0))
    return WindowScores(windower.boundaries(), scores, windower.samples / encoder.sample_rate)


def score_file(
    encoder,
    path: str | Path,
    spec: WindowSpec,
    score: Callable[[np.ndarray], np.ndarray],
    batch: int = BATCH_WINDOWS,
    block_seconds: float = STREAM_BLOCK_SECONDS,
) -> WindowScores:
    """Score an audio or video file window by window, streaming it (:func:`score_blocks`).

    Raises:
        AudioError: the file is missing, unreadable, empty, silent or has no audio track.
    """
    blocks = stream_audio(path, encoder.sample_rate, block_seconds=block_seconds)
    return score_blocks(encoder, blocks, spec, score, batch)
