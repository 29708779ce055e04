"""The encoder contract and registry.

Every encoder — audio, text or image, offline or hub — is an object with:

* ``name`` (str): registry name including its spec, e.g. ``"yamnet"``, ``"sbert:<model>"``;
* ``modality``: ``"audio"``, ``"text"`` or ``"image"``;
* ``dim`` (int): output dimension;
* ``sample_rate`` (int | None): the rate audio must arrive at (None for text/image);
* ``policy`` (:class:`~harken.data.audio.ClipPolicy`, audio only): how short/long clips are handled;
* ``embed(batch) -> np.ndarray``: float32 ``[N, dim]``; for audio, ``batch`` is a list of mono
  float32 waveforms at ``sample_rate`` (any lengths); for text, a list of strings; for image, a
  list of RGB ``uint8 [H, W, 3]`` frames (any sizes) or one ``uint8 [N, H, W, 3]`` array — RGB
  channel order, never BGR, as :func:`harken.data.video.read_frames` returns them; the encoder
  resizes and crops them itself, deterministically.
* ``config() -> dict``: everything that changes the output (model id, revision, pooling, policy),
  part of the feature-store key and of the run manifest.
* optionally, for audio, ``embed_stream(blocks) -> np.ndarray``: float32 ``[dim]`` for one clip
  given as consecutive mono blocks at ``sample_rate``, in memory bounded by the block size, equal
  to ``embed([concatenated blocks])[0]`` up to float rounding (the same windows/frames, the
  same maths); :func:`harken.encoders.stream.embed_audio_file` uses it for long clips.

Encoders are deterministic (eval mode, no random crops): a clip embeds identically alone and in a
batch, call after call. They batch internally and show progress on long inputs.

Video clips reach an image encoder through :func:`embed_videos`: the middle frame of each clip
(``n_frames=1``, ClipClap's choice) or the mean over ``n_frames`` evenly spaced frames. Encoders
whose rows are unit vectors (``config()["normalize"] == "L2"``) get the mean re-normalised.
Through the feature store the same mean is :class:`FramesMean` (:func:`frames_encoder`): an image
encoder whose ``frames_per_clip`` tells the store how many frames to decode per clip, and whose
config carries that number, so 1-frame and k-frame features never share a store folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harken.data.audio import ClipPolicy
from harken.data.video import read_frames
from harken.errors import ConfigError
from harken.registry import Registry


@runtime_checkable
class Encoder(Protocol):
    name: str
    modality: str
    dim: int
    sample_rate: int | None

    def embed(self, batch: Sequence[Any]) -> np.ndarray: ...

    def config(self) -> dict: ...


ENCODERS: Registry[Encoder] = Registry("encoder")


def get_encoder(name: str, **kwargs) -> Encoder:
    """Create a registered encoder by name (``"yamnet"``, ``"minilm"``, ``"sbert:<id>"``, ...).

    Text encoders come wrapped in :class:`~harken.encoders.textcache.CachedTextEncoder` (same
    name, dim and config; embeddings from the persistent text-embedding cache when known)
    unless ``HARKEN_TEXT_CACHE=0``. The result carries ``harken_recipe = (name, options)``, so
    that worker processes can rebuild it (:class:`harken.store.engines.EncoderRecipe`).
    """
    from harken.encoders.textcache import cached

    _import_backends()
    encoder = cached(ENCODERS.create(name, **kwargs))
    _record_recipe(encoder, name, kwargs)
    return encoder


def _record_recipe(encoder: Encoder, name: str, options: dict) -> None:
    """Note ``(name, options)`` on ``encoder`` so that a worker process can rebuild it
    (:func:`harken.store.engines.recipe_of`); encoders that refuse attributes are left alone
    (they then run only in the driver)."""
    with contextlib.suppress(AttributeError, TypeError):
        encoder.harken_recipe = (name, dict(options))


def available_encoders() -> list[str]:
    _import_backends()
    return sorted(ENCODERS)


def config_hash(config: dict) -> str:
    """Short stable hash of an encoder's config (feature-store key)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def windowed_mean(
    encoder_fn, waves: Sequence[np.ndarray], policy: ClipPolicy, sample_rate: int
) -> np.ndarray:
    """Embed each clip as the mean over its policy windows.

    ``encoder_fn`` maps a list of equal-policy windows to ``[W, D]``; windows of all clips are
    embedded together and averaged back per clip, so batching never changes a clip's result as
    long as ``encoder_fn`` itself is per-item deterministic.
    """
    windows: list[np.ndarray] = []
    owners: list[int] = []
    for i, wave in enumerate(waves):
        parts = policy.windows(wave, sample_rate)
        windows.extend(parts)
        owners.extend([i] * len(parts))
    if not windows:
        return np.zeros((0, 0), np.float32)
    emb = np.asarray(encoder_fn(windows), dtype=np.float32)
    owners_arr = np.asarray(owners)
    out = np.stack([emb[owners_arr == i].mean(axis=0) for i in range(len(waves))])
    return out.astype(np.float32)


def windowed_mean_stream(
    encoder_fn,
    blocks: Iterable[np.ndarray],
    policy: ClipPolicy,
    sample_rate: int,
    windows_per_call: int = 16,
) -> np.ndarray:
    """:func:`windowed_mean` of one clip given as consecutive blocks, in bounded memory.

    The clip's policy windows (:meth:`ClipPolicy.stream_windows`: the same windows) are
    embedded ``windows_per_call`` at a time and summed in float64; the result is their mean.
    It equals ``windowed_mean(encoder_fn, [clip], policy, sample_rate)[0]`` up to float32
    rounding of the mean (and whatever ``encoder_fn`` changes with its batch composition).

    Args:
        encoder_fn: Maps a list of windows to ``[W, D]``.
        blocks: Mono waveform pieces at ``sample_rate``.
        policy: Clip policy (held in bounded memory when :meth:`ClipPolicy.streams`).
        sample_rate: Rate of ``blocks``.
        windows_per_call: Windows held before they are embedded.

    Returns:
        float32 ``[D]``.
    """
    total, count, pending = None, 0, []

    def flush() -> None:
        nonlocal total, count
        emb = np.asarray(encoder_fn(pending), dtype=np.float32)
        part = emb.sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
        count += len(emb)
        pending.clear()

    for window in policy.stream_windows(blocks, sample_rate):
        pending.append(window)
        if len(pending) >= windows_per_call:
            flush()
    if pending:
        flush()
    return (total / count).astype(np.float32)


class UnitWindowMean:
    """Clip embedding = the re-normalised mean of unit window embeddings (the CLAP family).

    For audio encoders with ``policy``, ``sample_rate``, ``batch_size``, ``dim`` and
    ``_embed_windows(windows) -> [W, dim]`` (unit rows): :meth:`embed` windows whole waveforms
    (:func:`windowed_mean`), :meth:`embed_stream` the same windows as their samples arrive
    (:func:`windowed_mean_stream`).
    """

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Embed mono waveforms at :attr:`sample_rate` (any lengths).

        Returns:
            float32 ``[N, dim]``, unit rows: per clip, the re-normalised mean of its windows'
            unit embeddings.
        """
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        mean = windowed_mean(self._embed_windows, batch, self.policy, self.sample_rate)
        norms = np.linalg.norm(mean, axis=1, keepdims=True)
        return (mean / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed_stream(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One clip's embedding from consecutive mono blocks at :attr:`sample_rate`.

        The policy's windows are cut as their samples arrive (the same windows as
        :meth:`embed`), embedded a batch at a time and summed; the re-normalised mean equals
        :meth:`embed`'s up to float rounding. Memory: one block plus one batch of windows.

        Returns:
            float32 ``[dim]``, unit norm.
        """
        mean = windowed_mean_stream(
            self._embed_windows,
            blocks,
            self.policy,
            self.sample_rate,
            windows_per_call=self.batch_size,
        )
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def embed_videos(
    encoder: Encoder,
    paths: Sequence[str | Path],
    n_frames: int = 1,
    *,
    max_bytes: int | None = None,
    frames_per_call: int = 32,
) -> np.ndarray:
    """Embed video clips with an image encoder: each clip is the mean of its frames' embeddings.

    ``e = mean_j f(frame_j)`` over the ``n_frames`` frames of :func:`read_frames` (with
    ``n_frames=1``, the middle frame: ``e = f(middle)``); re-normalised to unit length when the
    encoder's rows are unit vectors (``config()["normalize"] == "L2"``). Frames of several clips
    go through ``encoder.embed`` together, at most ``frames_per_call`` at a time, so memory stays
    bounded on long lists.

    Args:
        encoder: An encoder with ``modality == "image"``.
        paths: Video files (a still image reads as a one-frame video).
        n_frames: Frames per clip.
        max_bytes: Refuse larger files (see :func:`read_frames`).
        frames_per_call: Decoded frames held before they are embedded.

    Returns:
        float32 ``[len(paths), encoder.dim]``.

    Raises:
        ConfigError: ``encoder`` does not embed images.
        VideoError: a file cannot be decoded (the message names it).
    """
    if encoder.modality != "image":
        raise ConfigError(
            f"encoder {encoder.name!r} embeds {encoder.modality}, not video frames; "
            "use an image encoder such as 'efficientnet-lite0' or 'clip-image'"
        )
    if not paths:
        return np.zeros((0, encoder.dim), np.float32)
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    unit = encoder.config().get("normalize") == "L2"

    def flush() -> None:
        frames = [frame for clip in pending for frame in clip]  # clips may differ in size
        emb = np.asarray(encoder.embed(frames), np.float32)
        out.extend(_mean_of_frames(emb, len(pending), n_frames, unit))
        pending.clear()

    for path in paths:
        pending.append(read_frames(path, n_frames, max_bytes=max_bytes))
        if len(pending) * n_frames >= frames_per_call:
            flush()
    if pending:
        flush()
    return np.stack(out).astype(np.float32)


def _mean_of_frames(emb: np.ndarray, clips: int, frames: int, unit: bool) -> np.ndarray:
    """``[clips·frames, D]`` frame rows → ``[clips, D]`` per-clip means (re-normalised when
    ``unit`` and ``frames > 1``)."""
    out = emb.reshape(clips, frames, -1).mean(axis=1).astype(np.float32)
    if unit and frames > 1:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


class FramesMean:
    """An image encoder over ``frames`` frames per clip: ``e = mean_j f(frame_j)``.

    The same embedding as :func:`embed_videos` with ``n_frames=frames``: the mean of the inner
    encoder's embeddings of the clip's frames (:func:`~harken.data.video.read_frames`: the
    centres of ``frames`` equal segments of the clip span), re-normalised to unit length when
    the inner rows are unit vectors (``config()["normalize"] == "L2"``). The feature store
    decodes :attr:`frames_per_clip` frames per clip for it; :meth:`config` adds ``"frames"`` to
    the inner config, so its store folder differs from the inner encoder's.

    Args:
        encoder: An image encoder (``modality == "image"``).
        frames: Frames per clip (≥ 1).

    Raises:
        ConfigError: ``encoder`` does not embed images, or ``frames < 1``.
    """

    modality = "image"
    sample_rate = None

    def __init__(self, encoder: Encoder, frames: int) -> None:
        if encoder.modality != "image":
            raise ConfigError(
                f"encoder {encoder.name!r} embeds {encoder.modality}, not video frames; "
                "use an image encoder such as 'efficientnet-lite0' or 'clip-image'"
            )
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ConfigError(f"frames per clip must be an integer ≥ 1, not {frames!r}")
        self.inner = encoder
        self.frames_per_clip = frames
        self.name = encoder.name
        self.dim = encoder.dim

    def config(self) -> dict:
        return {**self.inner.config(), "frames": self.frames_per_clip}

    def embed(self, batch: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed clips given as frame stacks.

        Args:
            batch: A list of RGB ``uint8 [frames, H, W, 3]`` arrays (sizes may differ between
                clips), or one ``[N, frames, H, W, 3]`` array.

        Returns:
            float32 ``[N, dim]``.

        Raises:
            ValueError: a clip does not hold :attr:`frames_per_clip` frames.
        """
        k = self.frames_per_clip
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        for clip in batch:
            if np.ndim(clip) != 4 or len(clip) != k:
                raise ValueError(
                    f"{type(self).__name__} expects [{k}, H, W, 3] frame stacks per clip, got "
                    f"shape {np.shape(clip)}"
                )
        frames = [frame for clip in batch for frame in clip]
        emb = np.asarray(self.inner.embed(frames), np.float32)
        unit = self.inner.config().get("normalize") == "L2"
        return _mean_of_frames(emb, len(batch), k, unit)


def frames_encoder(encoder: Encoder, frames: int) -> Encoder:
    """``encoder`` itself for ``frames == 1`` (the middle frame: today's store keys and
    results), else :class:`FramesMean` over ``frames`` frames per clip.

    Raises:
        ConfigError: as :class:`FramesMean`.
    """
    if frames == 1 and not isinstance(frames, bool) and encoder.modality == "image":
        return encoder
    return FramesMean(encoder, frames)  # checks the modality and the number


def _import_backends() -> None:
    """Import backend modules so they register themselves (one line per backend)."""
    from harken.encoders import backends  # noqa: F401
