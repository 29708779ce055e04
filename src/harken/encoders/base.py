"""The encoder contract and registry.

Every encoder — audio, text or image, offline or hub — is an object with:

* ``name`` (str): registry name including its spec, e.g. ``"yamnet"``, ``"sbert:<model>"``;
* ``modality``: ``"audio"``, ``"text"`` or ``"image"``;
* ``dim`` (int): output dimension;
* ``sample_rate`` (int | None): the rate audio must arrive at (None for text/image);
* ``policy`` (:class:`~harken.data.audio.ClipPolicy`, audio only): how short/long clips are handled;
* ``embed(batch) -> np.ndarray``: float32 ``[N, dim]``; for audio, ``batch`` is a list of mono
  float32 waveforms at ``sample_rate`` (any lengths); for text, a list of strings.
* ``config() -> dict``: everything that changes the output (model id, revision, pooling, policy),
  part of the feature-store key and of the run manifest.

Encoders are deterministic (eval mode, no random crops): a clip embeds identically alone and in a
batch, call after call. They batch internally and show progress on long inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harken.data.audio import ClipPolicy
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
    """Create a registered encoder by name (``"yamnet"``, ``"minilm"``, ``"sbert:<id>"``, ...)."""
    _import_backends()
    return ENCODERS.create(name, **kwargs)


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


def _import_backends() -> None:
    """Import backend modules so they register themselves (one line per backend)."""
    from harken.encoders import backends  # noqa: F401
