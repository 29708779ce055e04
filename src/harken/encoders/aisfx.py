"""aiSFX: the sound-effects CNN of the ``aisfx`` wheel (ISMIR 2022, model "X-Sequential-CE").

A 9-layer 2-D CNN (DCASE cross-task baseline, max pooling; 6.2 M parameters) trained across nine
sound-effects libraries; only its embedding network is used here (the nine classifier heads of
the checkpoint are ignored). Output: a 512-d embedding per 100-frame block (≈2.32 s); the clip
embedding is the mean over blocks with hop ½ block, as the package's ``main`` extracts them
(``emb_hop_size=0.5``).

Front end: re-implemented in numpy after the package's **essentia** path (the one the ISMIR
paper used, ``aisfx/spectrogram/spectrogram_essentia.py``), not its librosa path (which returns
the transpose of what the model expects and peak-normalises the waveform, unlike essentia):

* 44.1 kHz mono (harken resamples with soxr VHQ; essentia's EasyLoader uses libsamplerate and
  applies no gain at its default ``replayGain=-6``);
* essentia ``FrameCutter`` (2048 / 1024, ``startFromZero=False``): frames centred on samples
  0, 1024, 2048, ... zero-padded at both ends, the last frame the first whose centre reaches
  the end of the signal;
* symmetric Hann window (essentia ``Windowing``, ``normalized=False``), ``|rfft|`` (2048);
* essentia ``MelBands``: 96 HTK-mel bands 0–22050 Hz, triangles in the mel domain
  (``weighting="warping"``), each band's weights summing to one (``unit_sum``), applied to the
  power spectrum;
* ``log10(1e4 · x + 1)`` (``shift_scale_log``), then the package's "original" min–max scaling
  ``x / 9.457798957824707``.

Essentia's default silent-frame handling adds -100 dB noise to all-zero frames; that noise is
left out here (it changes ``log10(1e4 x + 1)`` by < 1e-5 and would make results random).

Blocks: frames are grouped in the policy's windows (default: 100-frame blocks, hop 50, the
last block ending at the last frame, a shorter spectrogram zero-padded to one block — zero is
silence after the log compression, as in the package's ``blocking``). Unlike the package, which
drops a final partial block, the last block is aligned to the clip's end so that no audio is
thrown away.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._dsp import hz_to_mel, mel_to_hz
from harken.encoders._hf import chunks, progress
from harken.encoders.base import ENCODERS, windowed_mean_stream
from harken.encoders.device import OnDevice, device_config, to_numpy
from harken.resources import package_dir

SAMPLE_RATE = 44100
N_FFT, HOP = 2048, 1024
N_MELS, F_MIN, F_MAX = 96, 0.0, 22050.0
BLOCK_FRAMES = 100
FRAME_RATE = SAMPLE_RATE / HOP  # spectrogram frames per second
BLOCK_SECONDS = BLOCK_FRAMES / FRAME_RATE  # ≈ 2.32 s
SPEC_MAX = 9.457798957824707  # the package's "original" normalisation (max over its datasets)


def _aisfx_dir() -> Path:
    return package_dir("aisfx", "aiSFX weights")


@cache
def mel_filterbank() -> np.ndarray:
    """``[n_fft//2+1, 96]`` essentia MelBands weights (htkMel, warping, unit_sum)."""
    n_bins = N_FFT // 2 + 1
    bin_hz = (SAMPLE_RATE / 2.0) / (n_bins - 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    fb = np.zeros((n_bins, N_MELS))
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        j = np.arange(int(lo / bin_hz + 0.5), int(hi / bin_hz + 0.5))
        f = j * bin_hz
        up = (f >= lo) & (f < mid)
        down = (f >= mid) & (f < hi)
        fb[j[up], i] = (hz_to_mel(f[up]) - hz_to_mel(lo)) / (hz_to_mel(mid) - hz_to_mel(lo))
        fb[j[down], i] = (hz_to_mel(hi) - hz_to_mel(f[down])) / (hz_to_mel(hi) - hz_to_mel(mid))
        total = fb[:, i].sum()
        if total > 0:
            fb[:, i] /= total
    return fb


@cache
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (N_FFT - 1))  # essentia's symmetric Hann


def log_mel(wave: np.ndarray) -> np.ndarray:
    """44.1 kHz mono wave → ``[frames, 96]`` normalised log-mel spectrogram (float32).

    Args:
        wave: Mono waveform at 44.1 kHz (any length ≥ 1 sample).

    Returns:
        ``log10(1e4 · mel + 1) / 9.4578`` per frame, frames centred every 1024 samples.
    """
    wave = np.asarray(wave, dtype=np.float64)
    half = N_FFT // 2
    n_frames = -(-len(wave) // HOP) + 1  # centres 0, HOP, ... up to the first ≥ len(wave)
    padded = np.zeros(half + (n_frames - 1) * HOP + N_FFT)
    padded[half : half + len(wave)] = wave
    return _frames(padded, n_frames)


def _frames(padded: np.ndarray, n_frames: int) -> np.ndarray:
    """The first ``n_frames`` frames (hop 1024, 2048 long) of a padded signal → log-mel."""
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _window(), axis=1)) ** 2
    spec = np.log10(1e4 * (power @ mel_filterbank()) + 1.0) / SPEC_MAX
    return spec.astype(np.float32)


def stream_log_mel(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """:func:`log_mel` of the concatenation of ``blocks``, as consecutive frame blocks.

    Frame ``j`` covers samples ``[1024 (j − 1), 1024 (j + 1))`` of the clip (zeros outside
    it); it is computed as soon as those samples have arrived, and the frames left at the end
    from the zero-padded tail, so the frames are those of :func:`log_mel` of the whole clip.

    Yields:
        float32 ``[n, 96]`` pieces of the spectrogram.
    """
    buf = np.zeros(N_FFT // 2)  # the padded signal from the next frame's first sample
    done, n_samples = 0, 0
    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, dtype=np.float64)])
        n_samples += len(block)
        n = (len(buf) - N_FFT) // HOP + 1 if len(buf) >= N_FFT else 0
        if n > 0:
            yield _frames(buf, n)
            buf, done = buf[n * HOP :].copy(), done + n
    rest = -(-n_samples // HOP) + 1 - done
    if rest > 0:
        yield _frames(np.pad(buf, (0, (rest - 1) * HOP + N_FFT - len(buf))), rest)


def spectrogram_blocks(spec: np.ndarray, policy: ClipPolicy) -> np.ndarray:
    """Cut a ``[frames, 96]`` spectrogram into the policy's windows → ``[B, 100, 96]``.

    The policy is applied in the frame domain (its seconds are converted at
    :data:`FRAME_RATE` frames per second) through :meth:`ClipPolicy.windows` itself, run on
    the 1-based frame indices so that its zero padding marks padded (silent) frames.

    Args:
        spec: Normalised log-mel spectrogram of one clip.
        policy: Clip policy (seconds).

    Returns:
        Stacked blocks, float32.
    """
    index = np.arange(1, len(spec) + 1, dtype=np.float32)  # exact below 2**24 frames
    padded = np.vstack([np.zeros((1, spec.shape[1]), np.float32), spec])
    return np.stack([padded[w.astype(np.int64)] for w in policy.windows(index, FRAME_RATE)])


def _numpy_scalar_globals() -> list:
    """numpy objects the checkpoint pickles (its dataset table holds numpy int64 indices)."""
    core = getattr(np, "_core", None) or np.core
    return [
        (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]


class AisfxEncoder(OnDevice):
    """aiSFX sound-effects embeddings (512-d), averaged over a clip's blocks.

    Args:
        policy: Clip policy, applied to spectrogram frames; the default is 100-frame blocks
            (≈2.32 s) with hop ½ block, short clips zero-padded to one block.
        batch_size: Blocks per forward pass.
        device: Torch device of the CNN (the front end is numpy); None: the current
            :func:`~harken.encoders.device.use_device` block's, else the CPU.
    """

    modality = "audio"
    dim = 512
    sample_rate = SAMPLE_RATE

    def __init__(
        self, policy: ClipPolicy | None = None, batch_size: int = 32, device: str | None = None
    ) -> None:
        self.name = "aisfx"
        self._set_device(device)
        self.policy = policy or ClipPolicy(min_seconds=BLOCK_SECONDS, max_seconds=BLOCK_SECONDS)
        self.batch_size = batch_size
        self._model = None

    def config(self) -> dict:
        return {
            "name": self.name,
            "weights": "aisfx/models/checkpoint.pth (X-Sequential-CE, embedding net)",
            "frontend": "essentia-equivalent log-mel 2048/1024, 96 htk mels, /9.4578",
            "output": "mean block embedding (512)",
            "policy": self.policy.describe(),
            **device_config(self.device),
        }

    def _load(self):
        if self._model is not None:
            return self._model
        import torch
        from aisfx.models.cnn2d import EmbeddingNet

        path = _aisfx_dir() / "models" / "checkpoint.pth"
        # The checkpoint is (state_dict, dataset table); the table holds numpy scalars, which
        # are allow-listed (data constructors only) so that the load stays weights_only. Only
        # entries the process has not allowed itself are added, as the context removes them.
        known = torch.serialization.get_safe_globals()
        extra = [g for g in _numpy_scalar_globals() if g not in known]
        with torch.serialization.safe_globals(extra):
            weights, _datasets = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "embedding_net."
        state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        model = EmbeddingNet("max", 3, 1, 64)  # as aisfx.inference.load_bestModel builds it
        model.load_state_dict(state)
        model.eval()
        self._model = model
        return model

    def block_embeddings(self, blocks: np.ndarray) -> np.ndarray:
        """``[B, 100, 96]`` blocks → ``[B, 512]`` embeddings."""
        import torch

        device = self.device
        model = self._load().to(device)
        out = []
        batches = list(chunks(blocks, self.batch_size))
        with torch.no_grad():
            for batch in progress(batches, len(batches), "aisfx", len(blocks)):
                x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
                out.append(to_numpy(model(x)))
        return np.concatenate(out).astype(np.float32)

    def embed_stream(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One clip's embedding from consecutive 44.1 kHz mono blocks, in bounded memory.

        The spectrogram is computed as the samples arrive (:func:`stream_log_mel`: the same
        frames), cut into the policy's blocks as their frames arrive
        (:meth:`ClipPolicy.stream_windows`: the same blocks, in the same batches of
        :attr:`batch_size`) and the block embeddings averaged: equal to :meth:`embed` up to
        float rounding of the mean.

        Returns:
            float32 ``[512]``.
        """

        def embed_blocks(windows: Sequence[np.ndarray]) -> np.ndarray:
            return self.block_embeddings(np.stack(windows))

        frames = stream_log_mel(blocks)
        return windowed_mean_stream(
            embed_blocks, frames, self.policy, FRAME_RATE, windows_per_call=self.batch_size
        )

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Embed mono 44.1 kHz waveforms.

        Args:
            batch: Waveforms at :attr:`sample_rate`, any lengths.

        Returns:
            float32 ``[N, 512]``: per clip, the mean of its block embeddings.
        """
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        per_clip = [spectrogram_blocks(log_mel(w), self.policy) for w in batch]
        emb = self.block_embeddings(np.concatenate(per_clip))
        bounds = np.cumsum([0] + [len(b) for b in per_clip])
        means = [emb[lo:hi].mean(axis=0) for lo, hi in itertools.pairwise(bounds)]
        return np.stack(means).astype(np.float32)


@ENCODERS.register("aisfx")
def _make_aisfx(**kwargs) -> AisfxEncoder:
    return AisfxEncoder(**kwargs)
