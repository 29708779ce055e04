"""k frames per clip through the feature store: FramesMean / frames_encoder on real av-mini clips
with the real EfficientNet-Lite0 image encoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from harken.data.readers import read_dataset
from harken.data.video import read_frames
from harken.encoders.base import FramesMean, embed_videos, frames_encoder, get_encoder
from harken.errors import ConfigError
from harken.store.features import FeatureStore, encode_clips

from .conftest import StatsEncoder

K = 4


@pytest.fixture(scope="module")
def clips(request):
    data = request.getfixturevalue("shared_data")
    manifest = read_dataset("avmini", data_dir=data)
    wanted = ("orchestra", "hitting metal with a drumstick")  # small frames: fast on CPU
    return [next(c for c in manifest if c.label("label") == w) for w in wanted]


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("efficientnet-lite0")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FeatureStore:
    return FeatureStore(tmp_path_factory.mktemp("frames") / "features", progress=False)


@pytest.fixture(scope="module")
def stored_k(store, clips, encoder) -> np.ndarray:
    return store.get("avmini", frames_encoder(encoder, K), clips)


def test_k_frame_embedding_is_the_mean_of_the_frame_embeddings(store, stored_k, clips, encoder):
    frames = [read_frames(c.video_path, K) for c in clips]  # decoded independently
    per_frame = encoder.embed([f for clip in frames for f in clip])
    expected = per_frame.reshape(len(clips), K, -1).mean(axis=1)
    assert stored_k.shape == (len(clips), encoder.dim)
    np.testing.assert_allclose(stored_k, expected, rtol=1e-4, atol=1e-5)
    # deterministic: a fresh encoding equals it, and the store serves it back unchanged
    np.testing.assert_array_equal(encode_clips(frames_encoder(encoder, K), clips), stored_k)
    report = store.get_usable("avmini", frames_encoder(encoder, K), clips).report
    assert report.cached == len(clips) and report.encoded == 0


def test_one_frame_keeps_the_plain_encoder_and_differs_from_k_frames(
    store, stored_k, clips, encoder
):
    assert frames_encoder(encoder, 1) is encoder
    one = store.get("avmini", frames_encoder(encoder, 1), clips)
    middle = encoder.embed([read_frames(c.video_path, 1)[0] for c in clips])
    np.testing.assert_allclose(one, middle, rtol=1e-4, atol=1e-5)
    assert np.abs(one - stored_k).max(axis=1).min() > 1e-3  # every clip changes
    # separate store folders: 1-frame and k-frame features never mix
    folders = {store.folder("avmini", e) for e in (encoder, FramesMean(encoder, K))}
    assert len(folders) == 2
    assert store.folder("avmini", FramesMean(encoder, 1)) not in folders


def test_wrapper_contract(encoder):
    wrapped = FramesMean(encoder, K)
    assert (wrapped.name, wrapped.dim, wrapped.modality) == (encoder.name, encoder.dim, "image")
    assert wrapped.config() == {**encoder.config(), "frames": K}
    assert wrapped.frames_per_clip == K and wrapped.sample_rate is None
    assert wrapped.embed([]).shape == (0, encoder.dim)
    with pytest.raises(ValueError, match=r"\[4, H, W, 3\]"):
        wrapped.embed([np.zeros((2, 8, 8, 3), np.uint8)])
    with pytest.raises(ConfigError, match="not video frames"):
        frames_encoder(StatsEncoder(), 1)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="frames per clip"):
            frames_encoder(encoder, bad)


class UnitColour:
    """A tiny image encoder with unit rows: the L2-normalised mean colour of a frame."""

    name = "test/unit-colour"
    modality = "image"
    dim = 3
    sample_rate = None

    def config(self) -> dict:
        return {"name": self.name, "normalize": "L2"}

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        rows = np.stack([np.asarray(f, np.float64).reshape(-1, 3).mean(axis=0) + 1 for f in batch])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_unit_encoders_get_the_mean_re_normalised():
    frames = np.zeros((K, 2, 2, 3), np.uint8)
    frames[:2, ..., 0] = 200  # two red frames, two black ones
    inner = UnitColour()
    out = FramesMean(inner, K).embed([frames])
    mean = inner.embed(list(frames)).mean(axis=0)
    assert np.linalg.norm(mean) < 0.99  # the plain mean is not a unit vector
    np.testing.assert_allclose(out[0], mean / np.linalg.norm(mean), rtol=1e-6)


def test_the_wrapper_and_embed_videos_agree(tmp_path):
    from media import write_video

    colours = [(200, 0, 0), (0, 0, 0), (0, 200, 0), (0, 0, 200)] * 2
    path = write_video(tmp_path / "v.mp4", [np.full((16, 16, 3), c, np.uint8) for c in colours])
    inner = UnitColour()
    wrapped = FramesMean(inner, K).embed([read_frames(path, K)])
    np.testing.assert_allclose(wrapped, embed_videos(inner, [path], K), rtol=1e-6)
    assert abs(float(np.linalg.norm(wrapped)) - 1) < 1e-5
