"""The feature store on real Kitchen20 clips: caching, resumption, order, keys and errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from harken.data.audio import load_audio
from harken.errors import AudioError
from harken.store.features import FeatureStore, array_digest, clip_key, encode_clips

from .conftest import StatsEncoder


def _store(tmp_path, shard_size: int = 4) -> FeatureStore:
    return FeatureStore(tmp_path / "features", shard_size=shard_size, progress=False)


def _shards(store: FeatureStore, encoder) -> list:
    return sorted(store.folder("kitchen20", encoder).glob("shard-*.npz"))


def test_embeddings_are_the_encoders_output_in_clip_order(tmp_path, kitchen20_clips):
    encoder = StatsEncoder()
    emb = _store(tmp_path).get("kitchen20", encoder, kitchen20_clips)
    assert emb.shape == (10, 3) and emb.dtype == np.float32
    for row, clip in zip(emb, kitchen20_clips, strict=True):
        wave, rate = load_audio(clip.audio_path, 16000)
        assert rate == 16000
        np.testing.assert_allclose(row, StatsEncoder().embed([wave])[0], rtol=1e-6)
    assert len({tuple(r) for r in emb.tolist()}) == 10  # real, distinct clips


def test_second_get_makes_no_embed_calls_and_returns_identical_arrays(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    first_encoder = StatsEncoder()
    first = store.get("kitchen20", first_encoder, kitchen20_clips)
    assert first_encoder.calls == [4, 4, 2]
    assert len(_shards(store, first_encoder)) == 3
    again = StatsEncoder()
    second = _store(tmp_path).get("kitchen20", again, kitchen20_clips)  # a fresh store object
    assert again.calls == []
    np.testing.assert_array_equal(first, second)
    meta = json.loads((store.folder("kitchen20", again) / "encoder.json").read_text())
    assert meta == again.config()


def test_a_crashed_run_resumes_with_the_missing_clips_only(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    crashing = StatsEncoder(fail_after=1)
    with pytest.raises(RuntimeError, match="simulated"):
        store.get("kitchen20", crashing, kitchen20_clips)
    assert crashing.calls == [4]
    assert len(_shards(store, crashing)) == 1  # the finished shard survived
    with np.load(_shards(store, crashing)[0]) as z:
        assert z["keys"].tolist() == [clip_key(c) for c in kitchen20_clips[:4]]

    resumed = StatsEncoder()
    emb = store.get("kitchen20", resumed, kitchen20_clips)
    assert resumed.calls == [4, 2]  # 6 missing clips, nothing re-encoded
    fresh = _store(tmp_path / "fresh").get("kitchen20", StatsEncoder(), kitchen20_clips)
    np.testing.assert_array_equal(emb, fresh)
    assert not list(store.folder("kitchen20", resumed).glob("*.tmp"))


def test_rows_follow_the_requested_clip_order(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    forward = store.get("kitchen20", StatsEncoder(), kitchen20_clips)
    encoder = StatsEncoder()
    order = [7, 2, 9, 0]
    picked = store.get("kitchen20", encoder, [kitchen20_clips[i] for i in order])
    assert encoder.calls == []
    np.testing.assert_array_equal(picked, forward[order])
    backward = store.get("kitchen20", encoder, kitchen20_clips[::-1])
    np.testing.assert_array_equal(backward, forward[::-1])


def test_only_new_clips_are_encoded_when_the_list_grows(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    store.get("kitchen20", StatsEncoder(), kitchen20_clips[:6])
    encoder = StatsEncoder()
    store.get("kitchen20", encoder, kitchen20_clips)
    assert encoder.calls == [4]


def test_another_encoder_config_gets_another_folder(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    at_16k, at_8k = StatsEncoder(16000), StatsEncoder(8000)
    assert store.folder("kitchen20", at_16k) != store.folder("kitchen20", at_8k)
    assert store.folder("kitchen20", at_16k) != store.folder("other", at_16k)
    assert store.folder("kitchen20", at_16k) == store.folder("kitchen20", StatsEncoder(16000))
    assert "/" not in store.folder("kitchen20", at_16k).name  # "test/stats" made path-safe
    clips = kitchen20_clips[:3]
    a = store.get("kitchen20", at_16k, clips)
    b = store.get("kitchen20", at_8k, clips)
    assert at_8k.calls == [3]  # not served from the 16 kHz cache
    assert not np.array_equal(a, b)


def test_clip_key_changes_with_the_span_and_the_file(tmp_path, kitchen20_clips):
    clip = kitchen20_clips[0]
    assert clip_key(clip) == clip_key(replace(clip))
    assert clip_key(clip) != clip_key(replace(clip, start=0.0, end=1.0))
    assert clip_key(clip) != clip_key(replace(clip, clip_id="other"))
    copy = tmp_path / "copy.flac"
    copy.write_bytes(clip.audio_path.read_bytes())
    moved = replace(clip, audio_path=copy)
    key = clip_key(moved)
    with open(copy, "ab") as f:
        f.write(b"\0" * 10)  # an edited file is re-encoded
    assert clip_key(moved) != key


def test_a_corrupt_file_names_the_clip_and_keeps_finished_shards(tmp_path, kitchen20_clips):
    bad_file = tmp_path / "broken.flac"
    bad_file.write_bytes(b"this is not audio at all" * 50)
    clips = list(kitchen20_clips)
    clips[5] = replace(clips[5], clip_id="broken-clip", audio_path=bad_file)
    store = _store(tmp_path)
    encoder = StatsEncoder()
    with pytest.raises(AudioError, match="broken-clip") as err:
        store.get("kitchen20", encoder, clips)
    assert "broken.flac" in str(err.value)
    assert encoder.calls == [4]
    assert len(_shards(store, encoder)) == 1
    # after removing the bad clip only the remaining clips are encoded
    retry = StatsEncoder()
    store.get("kitchen20", retry, clips[:5] + clips[6:])
    assert retry.calls == [4, 1]


def test_encode_clips_is_a_pure_function_of_the_clips(kitchen20_clips):
    encoder = StatsEncoder()
    a = encode_clips(encoder, kitchen20_clips[:3])
    b = encode_clips(encoder, kitchen20_clips[:3])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(encode_clips(encoder, kitchen20_clips[1:2])[0], a[1])
    with pytest.raises(AudioError, match="missing-clip"):
        encode_clips(
            encoder, [replace(kitchen20_clips[0], clip_id="missing-clip", audio_path="/nope.wav")]
        )


def test_array_digest_is_stable_and_content_sensitive(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    encoder = StatsEncoder()
    first = store.get("kitchen20", encoder, kitchen20_clips[:4])
    fp = array_digest(first)
    assert fp == array_digest(store.get("kitchen20", encoder, kitchen20_clips[:4]))
    assert fp != array_digest(store.get("kitchen20", encoder, kitchen20_clips[1:5]))


def test_image_encoders_embed_the_middle_rgb_frame_of_each_clip(tmp_path):
    from harken.data.manifest import Clip
    from harken.encoders.base import get_encoder
    from harken.store.features import FeatureStore, encode_clips
    from media import solid_video, write_video

    red = solid_video(tmp_path / "red.mp4", (255, 0, 0), n=10)
    # frames 0-4 blue, 5-9 green: the middle frame (index 5) is green
    halves = [
        np.full((48, 64, 3), (0, 0, 255) if i < 5 else (0, 255, 0), np.uint8) for i in range(10)
    ]
    mixed = write_video(tmp_path / "mixed.mp4", halves)
    clips = [
        Clip("red", audio_path=red),
        Clip("mixed", audio_path=tmp_path / "audio-of-mixed.wav", video_path=mixed),
    ]
    enc = get_encoder("efficientnet-lite0")
    emb = encode_clips(enc, clips)
    expected = enc.embed(
        [np.full((48, 64, 3), (255, 0, 0), np.uint8), np.full((48, 64, 3), (0, 255, 0), np.uint8)]
    )
    assert emb.shape == (2, 1280)
    np.testing.assert_allclose(emb, expected, atol=0.05 * np.abs(expected).max())
    assert np.abs(emb[0] - expected[1]).max() > 0.1 * np.abs(expected).max()
    stored = FeatureStore(tmp_path / "store", progress=False).get("vids", enc, clips)
    np.testing.assert_array_equal(stored, emb)
