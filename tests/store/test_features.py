"""The feature store on real Kitchen20 clips: caching, resumption, order, content keys,
checksummed shards, bad clips, kill -9 and concurrent writers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import load_audio
from harken.errors import AudioError
from harken.store import features as features_module
from harken.store.features import (
    FeatureStore,
    HashCache,
    array_digest,
    clip_key,
    encode_clips,
    file_sha256,
)

from .conftest import KITCHEN20, StatsEncoder, kitchen20_first

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "fill_worker.py"


def _store(tmp_path, shard_size: int = 4) -> FeatureStore:
    return FeatureStore(tmp_path / "features", shard_size=shard_size, progress=False)


def _shards(store: FeatureStore, encoder) -> list:
    return sorted(store.folder("kitchen20", encoder).glob("shard-*.npz"))


def _key(clip, tmp_path) -> str:
    return clip_key(clip, HashCache(tmp_path / "keys.sqlite3"))


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
    assert meta == {
        "encoder": again.config(),
        "preprocessing_version": features_module.PREPROCESSING_VERSION,
    }


def test_a_crashed_run_resumes_with_the_missing_clips_only(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    crashing = StatsEncoder(fail_after=1)
    with pytest.raises(RuntimeError, match="simulated"):
        store.get("kitchen20", crashing, kitchen20_clips)
    assert crashing.calls == [4]
    assert len(_shards(store, crashing)) == 1  # the finished shard survived
    with np.load(_shards(store, crashing)[0]) as z:
        assert z["keys"].tolist() == [_key(c, tmp_path) for c in kitchen20_clips[:4]]

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


def test_clip_key_covers_content_and_span_not_path_or_id(tmp_path, kitchen20_clips):
    clip = kitchen20_clips[0]
    assert _key(clip, tmp_path) == _key(replace(clip), tmp_path)
    assert _key(clip, tmp_path) != _key(replace(clip, start=0.0, end=1.0), tmp_path)
    assert _key(clip, tmp_path) == _key(replace(clip, clip_id="other"), tmp_path)
    copy = tmp_path / "copy.flac"
    copy.write_bytes(clip.audio_path.read_bytes())
    assert _key(replace(clip, audio_path=copy), tmp_path) == _key(clip, tmp_path)
    with open(copy, "ab") as f:
        f.write(b"\0" * 10)
    assert _key(replace(clip, audio_path=copy), tmp_path) != _key(clip, tmp_path)
    video = tmp_path / "video.mp4"
    video.write_bytes(b"not really a video")
    with_video = replace(clip, video_path=video)
    assert _key(with_video, tmp_path) == _key(clip, tmp_path)  # audio encoders read no video
    cache = HashCache(tmp_path / "keys.sqlite3")
    image_key = clip_key(with_video, cache, "image")
    assert image_key != _key(clip, tmp_path)
    video.write_bytes(b"another video, same size")
    assert clip_key(with_video, cache, "image") != image_key


def _wav(path, seed: int) -> None:
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, 16000).astype(np.float32)
    sf.write(path, wave, 16000, subtype="FLOAT")


def test_a_rewritten_file_of_the_same_size_and_mtime_is_encoded_again(tmp_path):
    path = tmp_path / "clip.wav"
    _wav(path, seed=1)
    clips = [replace(kitchen20_first(1)[0], audio_path=path)]
    store = _store(tmp_path)
    first = store.get("kitchen20", StatsEncoder(), clips)
    stat = path.stat()
    _wav(path, seed=2)  # other audio, same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    assert path.stat().st_size == stat.st_size
    encoder = StatsEncoder()
    second = _store(tmp_path).get("kitchen20", encoder, clips)
    assert encoder.calls == [1]
    assert not np.array_equal(first, second)
    wave, _ = load_audio(path, 16000)
    np.testing.assert_allclose(second[0], StatsEncoder().embed([wave])[0], rtol=1e-6)


def test_identical_files_share_one_embedding_and_a_moved_file_is_not_re_encoded(
    tmp_path, kitchen20_clips
):
    original = kitchen20_clips[0]
    copy = tmp_path / "elsewhere" / "renamed.flac"
    copy.parent.mkdir()
    shutil.copyfile(original.audio_path, copy)
    clips = [original, replace(original, clip_id="copy", audio_path=copy), kitchen20_clips[1]]
    store = _store(tmp_path)
    encoder = StatsEncoder()
    emb = store.get("kitchen20", encoder, clips)
    assert encoder.calls == [2]  # the copy shares the original's embedding
    np.testing.assert_array_equal(emb[0], emb[1])
    moved = tmp_path / "moved.flac"
    copy.rename(moved)
    again = StatsEncoder()
    store.get("kitchen20", again, [replace(original, clip_id="moved", audio_path=moved)])
    assert again.calls == []


def test_the_hash_cache_reads_an_unchanged_file_once(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    store.get("kitchen20", StatsEncoder(), kitchen20_clips)
    assert store.hashes.hashed == 10
    fresh = _store(tmp_path)  # another process would open the same database
    fresh.get("kitchen20", StatsEncoder(), kitchen20_clips)
    assert fresh.hashes.hashed == 0
    assert (tmp_path / "features" / "hashes.sqlite3").is_file()
    digest = fresh.hashes.digest(kitchen20_clips[0].audio_path)
    assert digest == file_sha256(kitchen20_clips[0].audio_path)


def test_missing_files_are_errors_naming_them(tmp_path, kitchen20_clips):
    cache = HashCache(tmp_path / "h.sqlite3")
    with pytest.raises(AudioError, match=r"nope\.wav: file not found"):
        cache.digest(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder"):
        cache.digest(tmp_path)


def test_the_preprocessing_version_is_part_of_the_folder_key(tmp_path, monkeypatch):
    store = _store(tmp_path)
    before = store.folder("kitchen20", StatsEncoder())
    monkeypatch.setattr(features_module, "PREPROCESSING_VERSION", 99)
    assert store.folder("kitchen20", StatsEncoder()) != before


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


def test_decoded_audio_held_before_embedding_is_bounded(kitchen20_clips, monkeypatch):
    """Clips are handed to the encoder in sub-batches once the decoded samples pass the budget
    (5 s clips at 16 kHz are 80,000 samples: a budget of 200,000 holds three), and the rows
    are those of one batch."""
    clips = kitchen20_clips[:7]
    whole = StatsEncoder()
    expected = encode_clips(whole, clips)
    assert whole.calls == [7]
    monkeypatch.setattr(features_module, "MAX_DECODED_VALUES", 200_000)
    bounded = StatsEncoder()
    np.testing.assert_array_equal(encode_clips(bounded, clips), expected)
    assert bounded.calls == [3, 3, 1]


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


# --- checksummed shards ------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - 40] ^= 0x01  # inside the zip's data, not just its padding
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_a_bit])
def test_a_damaged_shard_is_detected_moved_aside_and_its_clips_encoded_again(
    tmp_path, kitchen20_clips, damage
):
    store = _store(tmp_path)
    good = store.get("kitchen20", StatsEncoder(), kitchen20_clips)
    shards = _shards(store, StatsEncoder())
    with np.load(shards[0]) as z:
        n_damaged = len(z["keys"])
    damage(shards[0])
    encoder = StatsEncoder()
    with pytest.warns(RuntimeWarning, match=shards[0].name) as caught:
        got = _store(tmp_path).get_usable("kitchen20", encoder, kitchen20_clips)
    assert "encoded again" in str(caught[0].message)
    assert got.report.corrupt == [str(shards[0])]
    assert sum(encoder.calls) == n_damaged and got.report.encoded == n_damaged
    np.testing.assert_array_equal(got.embeddings, good)
    assert shards[0].with_name(shards[0].name + ".corrupt").is_file()
    # the same clips and embeddings give the same bytes: the healed shard has the old name
    assert _shards(store, encoder) == shards
    again = StatsEncoder()
    _store(tmp_path).get("kitchen20", again, kitchen20_clips)  # healed: nothing to do
    assert again.calls == []


def test_foreign_files_in_the_store_are_ignored_and_never_touched(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    folder = store.folder("kitchen20", StatsEncoder())
    folder.mkdir(parents=True)
    foreign = {
        "notes.txt": b"my notes",
        "shard-old.npz": b"not harken's naming",
        ".shard-x.npz.123.tmp": b"half written",
        "shard-" + "0" * 64 + ".npz.corrupt": b"moved aside earlier",
    }
    killed = folder / (".shard-" + "1" * 64 + ".npz.k1ll3d.tmp")  # a killed writer's leftover
    two_hours_ago = time.time() - 7200
    for name, data in foreign.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name, (two_hours_ago, two_hours_ago))
    killed.write_bytes(b"half a shard")
    os.utime(killed, (two_hours_ago, two_hours_ago))
    emb = store.get("kitchen20", StatsEncoder(), kitchen20_clips)
    assert emb.shape == (10, 3)
    for name, data in foreign.items():
        assert (folder / name).read_bytes() == data
    assert not killed.exists()


def test_shards_are_loaded_without_pickle(tmp_path, kitchen20_clips, monkeypatch):
    store = _store(tmp_path)
    store.get("kitchen20", StatsEncoder(), kitchen20_clips[:4])
    seen = []
    real_load = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    _store(tmp_path).get("kitchen20", StatsEncoder(), kitchen20_clips[:4])
    assert seen == [False]


# --- bad clips ---------------------------------------------------------------------------------


def _bad_files(tmp_path) -> dict[str, Path]:
    bad = {
        "missing": tmp_path / "missing.wav",
        "empty": tmp_path / "empty.wav",
        "corrupt": tmp_path / "corrupt.flac",
        "silent": tmp_path / "silent.wav",
    }
    bad["empty"].write_bytes(b"")
    bad["corrupt"].write_bytes(b"this is not audio at all" * 50)
    sf.write(bad["silent"], np.zeros(16000, np.float32), 16000)
    return bad


def test_get_usable_skips_bad_clips_and_keeps_the_batch(tmp_path, kitchen20_clips):
    bad = _bad_files(tmp_path)
    clips = list(kitchen20_clips)
    positions = {"missing": 1, "empty": 4, "corrupt": 5, "silent": 9}
    for name, i in positions.items():
        clips[i] = replace(clips[i], clip_id=f"bad-{name}", audio_path=bad[name])
    store = _store(tmp_path)
    encoder = StatsEncoder()
    got = store.get_usable("kitchen20", encoder, clips)
    kept = [i for i in range(10) if i not in positions.values()]
    assert got.kept == kept
    assert sum(encoder.calls) == 6  # every good clip, in batches that lost no good clip
    reference = _store(tmp_path / "ref").get("kitchen20", StatsEncoder(), [clips[i] for i in kept])
    np.testing.assert_array_equal(got.embeddings, reference)
    reasons = {b.clip.clip_id: b.reason for b in got.skipped}
    assert sorted(reasons) == sorted(f"bad-{n}" for n in positions)
    assert "missing.wav" in reasons["bad-missing"] and "not found" in reasons["bad-missing"]
    assert "empty.wav" in reasons["bad-empty"] and "empty" in reasons["bad-empty"]
    assert "corrupt.flac" in reasons["bad-corrupt"]
    assert "silent.wav" in reasons["bad-silent"] and "silent" in reasons["bad-silent"]
    assert [b.file for b in got.skipped if b.clip.clip_id == "bad-empty"] == [str(bad["empty"])]
    # the bad clips are not stored: a second call encodes none of the good ones again
    again = StatsEncoder()
    assert store.get_usable("kitchen20", again, clips).kept == kept
    assert again.calls == []
    with pytest.raises(AudioError, match="bad-missing"):
        store.get("kitchen20", StatsEncoder(), clips)


def test_a_nan_embedding_counts_as_a_bad_clip(tmp_path, kitchen20_clips):
    class NanOnSecond(StatsEncoder):
        def embed(self, batch):
            out = super().embed(batch)
            out[1] = np.nan
            return out

    got = _store(tmp_path).get_usable("kitchen20", NanOnSecond(), kitchen20_clips[:3])
    assert got.kept == [0, 2]
    assert [b.clip.clip_id for b in got.skipped] == [kitchen20_clips[1].clip_id]
    assert "NaN" in got.skipped[0].reason


def test_every_clip_bad_gives_no_rows(tmp_path):
    bad = _bad_files(tmp_path)
    clips = [replace(kitchen20_first(1)[0], clip_id=n, audio_path=p) for n, p in bad.items()]
    got = _store(tmp_path).get_usable("kitchen20", StatsEncoder(), clips)
    assert got.kept == [] and len(got.embeddings) == 0 and len(got.skipped) == 4


def test_fill_streams_each_position_once(tmp_path, kitchen20_clips):
    store = _store(tmp_path)
    store.get("kitchen20", StatsEncoder(), kitchen20_clips[:5])
    clips = kitchen20_clips + kitchen20_clips[:2]  # repeated clips share a row
    served: list[int] = []
    rows = {}

    def sink(positions, block):
        assert block.shape == (len(positions), 3)
        served.extend(positions.tolist())
        rows.update({p: r for p, r in zip(positions.tolist(), block, strict=True)})

    report = store.fill("kitchen20", StatsEncoder(), clips, sink)
    assert sorted(served) == list(range(12))
    assert (report.cached, report.encoded, report.shards_reused) == (7, 5, 2)
    full = store.get("kitchen20", StatsEncoder(), clips)
    np.testing.assert_array_equal(np.stack([rows[i] for i in range(12)]), full)


# --- other processes: kill -9 and concurrent writers ------------------------------------------


def _worker(root: Path, n: int, shard_size: int, delay: float, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, str(WORKER), str(root), str(n), str(shard_size), str(delay), str(out)]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finished_shards(folder: Path) -> list[Path]:
    return [p for p in folder.glob("shard-*.npz") if features_module._SHARD_NAME.match(p.name)]


def test_kill_9_loses_at_most_the_batch_in_flight_and_a_rerun_reuses_the_rest(tmp_path):
    if not (KITCHEN20 / "labels.csv").is_file():
        pytest.skip("real data not found")
    root, n = tmp_path / "features", 20
    folder = FeatureStore(root).folder("kitchen20", StatsEncoder())
    proc = _worker(root, n, 2, 0.25, tmp_path / "killed.npy")
    deadline = time.monotonic() + 120
    while len(_finished_shards(folder)) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the worker wrote no shards"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    finished = len(_finished_shards(folder))
    assert 3 <= finished < n // 2

    store = FeatureStore(root, shard_size=2, progress=False)
    encoder = StatsEncoder()
    got = store.get_usable("kitchen20", encoder, kitchen20_first(n))
    r = got.report
    assert (r.shards_reused, r.cached, r.corrupt) == (finished, 2 * finished, [])
    assert r.encoded == sum(encoder.calls) == n - 2 * finished
    fresh = FeatureStore(tmp_path / "fresh", progress=False)
    np.testing.assert_array_equal(
        got.embeddings, fresh.get("kitchen20", StatsEncoder(), kitchen20_first(n))
    )


def test_two_processes_filling_one_store_at_once(tmp_path):
    if not (KITCHEN20 / "labels.csv").is_file():
        pytest.skip("real data not found")
    root, n = tmp_path / "features", 16
    # 1 s per batch of 2: one process encodes for 8 s, long enough for the other to meet it
    procs = [_worker(root, n, 2, 1.0, tmp_path / f"p{i}.npy") for i in range(2)]
    reports, errs = [], []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        reports.append(json.loads(stdout))
        errs.append(stderr)
    assert all(r["corrupt"] == [] and r["skipped"] == 0 for r in reports)
    # no clip was encoded twice: one process encoded, the other waited for its lock and then
    # served the first one's shards
    assert sorted(r["encoded"] for r in reports) == [0, n], reports
    waited = [i for i, e in enumerate(errs) if "another harken job is encoding" in e]
    assert len(waited) == 1 and reports[waited[0]]["cached"] == n, (reports, errs)
    fresh = FeatureStore(tmp_path / "fresh", progress=False).get(
        "kitchen20", StatsEncoder(), kitchen20_first(n)
    )
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"p{i}.npy"), fresh)
    encoder = StatsEncoder()
    with_warnings_as_errors = FeatureStore(root, progress=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every shard either process wrote is intact
        again = with_warnings_as_errors.get_usable("kitchen20", encoder, kitchen20_first(n))
    assert encoder.calls == [] and again.report.cached == n
    np.testing.assert_array_equal(again.embeddings, fresh)
