"""Embedding audio files of any length in bounded memory.

Clips up to :data:`LONG_CLIP_SECONDS` take the in-memory path (:func:`~harken.data.audio.load_audio`
then ``encoder.embed``), bit for bit as always. Longer clips, and clips whose header states no
duration, are decoded by :func:`~harken.data.audio.stream_audio` in blocks and embedded block by
block through the encoder's ``embed_stream`` (running sums of window or frame embeddings), so
that memory depends on the block size, not on the clip's length. Their result equals the
in-memory one up to float32 rounding: the same windows and frames enter the same maths, only
the order of summation (and, for batched networks, the batch composition) differs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from harken.data.audio import STREAM_BLOCK_SECONDS, load_audio, span_duration, stream_audio
from harken.encoders.threads import around_encoding

LONG_CLIP_SECONDS = 300.0
"""Clips (or spans) longer than this are decoded and embedded as a stream of blocks."""


def is_long_clip(
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    *,
    long_seconds: float | None = None,
) -> bool:
    """Whether a clip takes the streaming path: its span is longer than ``long_seconds`` by the
    file's header, or the header states no duration (then only streaming bounds memory).

    ``long_seconds`` None means :data:`LONG_CLIP_SECONDS`. A missing file is not long:
    :func:`~harken.data.audio.load_audio` reports it.

    Raises:
        AudioError: the file's header cannot be read (the message names the file).
    """
    if not Path(path).exists():
        return False
    limit = LONG_CLIP_SECONDS if long_seconds is None else long_seconds
    if start is not None and end is not None and end - start <= limit:
        return False  # a short span of any file (e.g. one segment of a long recording)
    seconds = span_duration(path, start, end)
    return seconds is None or seconds > limit


@around_encoding
def embed_stream(encoder, blocks: Iterable[np.ndarray]) -> np.ndarray:
    """One clip's embedding (float32 ``[dim]``) from its mono blocks at ``encoder.sample_rate``.

    Uses the encoder's ``embed_stream``; an encoder without one gets the blocks concatenated
    and embedded in memory. Runs at the encoder's thread defaults
    (:func:`harken.encoders.threads.encoding`), as :func:`embed_audio_file` does.
    """
    method = getattr(encoder, "embed_stream", None)
    if method is not None:
        return np.asarray(method(blocks), dtype=np.float32)
    wave = np.concatenate([np.asarray(b, np.float32) for b in blocks] or [np.zeros(0, np.float32)])
    return np.asarray(encoder.embed([wave]), dtype=np.float32)[0]


@around_encoding
def embed_audio_file(
    encoder,
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    *,
    long_seconds: float | None = None,
    block_seconds: float = STREAM_BLOCK_SECONDS,
) -> np.ndarray:
    """Embed one audio file (or its ``[start, end)`` span) with an audio encoder.

    Args:
        encoder: An encoder with ``modality == "audio"``.
        path: Audio or video file.
        start: Span start in seconds (None = beginning).
        end: Span end in seconds (None = end of file).
        long_seconds: Longer clips are streamed (None: :data:`LONG_CLIP_SECONDS`; see
            :func:`is_long_clip`).
        block_seconds: Native-rate seconds decoded per block when streaming.

    Returns:
        float32 ``[encoder.dim]``.

    Raises:
        AudioError: as :func:`~harken.data.audio.load_audio` (missing, unreadable, empty,
            NaN/inf, entirely silent, no audio track), naming the file.
    """
    rate = encoder.sample_rate
    if not is_long_clip(path, start, end, long_seconds=long_seconds):
        wave, _ = load_audio(path, rate, start=start, end=end)
        return np.asarray(encoder.embed([wave]), dtype=np.float32)[0]
    blocks = stream_audio(path, rate, start=start, end=end, block_seconds=block_seconds)
    return embed_stream(encoder, blocks)
