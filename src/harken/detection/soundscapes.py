"""Benchmark soundscapes: long recordings made of real clips with known onsets and offsets.

One *set* (a seed and a list of clips, e.g. Kitchen20's dev or test folds) gives a few
recordings of 60–120 s that together hold one clip of every class, in a random order: each
recording is a quiet room-tone-like noise floor (brown noise — integrated white noise, its
power falling 6 dB per octave like a room's rumble — at :data:`NOISE_DBFS` RMS) into which
clips of different classes are placed one after another, separated by random gaps of
:data:`GAP_SECONDS` (so events never overlap and the gaps are real stretches without any
event). White noise is not used: at this level YAMNet tags it "White noise" / "Noise",
which the label bridge relates to fans and fridges, so every gap would look like an event
of those classes; real kitchens' quiet is low-frequency rumble, which YAMNet calls
"Silence". Each clip's leading and trailing near-silence is trimmed first (50 ms frames more
than :data:`TRIM_DB` below the clip's loudest frame), so that an event's annotated span is
where its sound is; the clip's level is kept. Everything is drawn from
``numpy.random.default_rng([seed, set index])``: same inputs, same soundscapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harken.errors import DataError

SAMPLE_RATE = 16000
DURATION_SECONDS = (60.0, 120.0)
GAP_SECONDS = (1.0, 6.0)
NOISE_DBFS = -60.0
TRIM_DB = 30.0
TRIM_FRAME_SECONDS = 0.05
MIN_EVENT_SECONDS = 0.5


@dataclass
class Soundscape:
    """One built recording and its events ``(onset, offset, label)`` in seconds."""

    name: str
    path: Path
    duration: float
    events: list[tuple[float, float, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def brown_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of brown noise (cumulative sum of white noise, mean removed) at unit RMS."""
    noise = np.cumsum(rng.standard_normal(n))
    noise -= np.linspace(noise[0], noise[-1], n)  # no drift: starts and ends at 0
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def trim_silence(wave: np.ndarray, rate: int = SAMPLE_RATE, below_db: float = TRIM_DB):
    """``wave`` without its leading and trailing frames quieter than the loudest frame by more
    than ``below_db`` (RMS of :data:`TRIM_FRAME_SECONDS` frames); at least
    :data:`MIN_EVENT_SECONDS` are kept (or the whole clip when shorter)."""
    frame = max(1, round(TRIM_FRAME_SECONDS * rate))
    n = len(wave) // frame
    if n == 0:
        return wave
    rms = np.sqrt(np.mean(wave[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-12))
    loud = np.flatnonzero(level >= level.max() - below_db)
    start, end = loud[0] * frame, min(len(wave), (loud[-1] + 1) * frame)
    keep = round(MIN_EVENT_SECONDS * rate)
    if end - start < keep:
        mid = (start + end) // 2
        start = max(0, min(mid - keep // 2, len(wave) - keep))
        end = min(len(wave), start + keep)
    return wave[start:end]


def build(
    clips: Sequence[tuple[str, str]],
    seed: int,
    set_index: int,
    out_dir: Path,
    prefix: str,
) -> list[Soundscape]:
    """Build and write (FLAC, 16 kHz) the soundscapes of one set (see the module docstring).

    Args:
        clips: ``(path, label)`` of the clips to draw from (one clip per label is used).
        seed: Random seed.
        set_index: Distinguishes sets built with the same seed.
        out_dir: Folder the recordings are written to.
        prefix: File-name prefix (``dev-s0`` → ``dev-s0-0.flac``, ...).
    """
    import soundfile as sf

    from harken.data.audio import load_audio

    rng = np.random.default_rng([seed, set_index])
    by_label: dict[str, list[str]] = {}
    for path, label in clips:
        by_label.setdefault(label, []).append(path)
    labels = sorted(by_label)
    queue = []
    for i in rng.permutation(len(labels)):
        paths = sorted(by_label[labels[i]])
        queue.append((labels[i], paths[rng.integers(len(paths))]))
    out_dir.mkdir(parents=True, exist_ok=True)
    scapes: list[Soundscape] = []
    while queue:
        target = float(rng.uniform(*DURATION_SECONDS))
        total = round(target * SAMPLE_RATE)
        mix = brown_noise(rng, total) * 10 ** (NOISE_DBFS / 20)
        name = f"{prefix}-{len(scapes)}"
        scape = Soundscape(name, out_dir / f"{name}.flac", target)
        t = 0
        while queue:
            label, path = queue[0]
            wave = trim_silence(load_audio(path, SAMPLE_RATE)[0])
            gap = round(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
            if t + gap + len(wave) + round(GAP_SECONDS[0] * SAMPLE_RATE) > total:
                if not scape.events:
                    raise DataError(f"{path}: longer than a whole soundscape; use shorter clips")
                break
            queue.pop(0)
            t += gap
            mix[t : t + len(wave)] += wave
            scape.events.append(
                (round(t / SAMPLE_RATE, 4), round((t + len(wave)) / SAMPLE_RATE, 4), label)
            )
            scape.sources.append(str(path))
            t += len(wave)
        sf.write(scape.path, np.clip(mix, -1.0, 1.0).astype(np.float32), SAMPLE_RATE)
        scapes.append(scape)
    return scapes
