"""WebDataset ``.tar`` shards (LAION-audio layout) as an input: real Kitchen20 clips packed into
small shards with json labels, read as a dataset, by ``harken embed`` and ``harken index``, and
compared with the same clips read as files."""

from __future__ import annotations

import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from harken import api
from harken.cli import main
from harken.data.readers import read_dataset
from harken.data.readers import webdataset as wds_reader
from harken.errors import AudioError, DataError
from harken.experiment import Experiment, ExperimentConfig
from harken.store.features import FeatureStore
from harken.store.index import EmbeddingIndex
from harken.store.runs import RunFolder
from store.conftest import StatsEncoder


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _meta(clip) -> dict:
    return {
        "label": clip.labels["label"],
        "fold": clip.fold,
        "group": clip.group,
        "text": [f"the sound of a {clip.labels['label']}", "another caption"],
        "original_data": {"freesound_id": clip.group},  # an object: not a label
    }


def write_shards(folder: Path, clips, per_shard: int = 3, corrupt: int | None = None) -> list:
    """Shards ``shards-000.tar, ...`` of ``clips`` (key = 6-digit position), each sample an
    audio member and its json; sample ``corrupt`` gets bytes that are not audio."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s, lo in enumerate(range(0, len(clips), per_shard)):
        path = folder / f"shards-{s:03d}.tar"
        with tarfile.open(path, "w") as tar:
            for i, clip in enumerate(clips[lo : lo + per_shard], lo):
                data = b"not audio" * 200 if i == corrupt else Path(clip.audio_path).read_bytes()
                _add(tar, f"{i:06d}{Path(clip.audio_path).suffix}", data)
                _add(tar, f"{i:06d}.json", json.dumps(_meta(clip)).encode())
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def clips(shared_data):
    """Six Kitchen20 clips, two of each of three classes, with their folds and groups."""
    every = read_dataset("kitchen20", shared_data / "kitchen20").clips
    classes = sorted({c.labels["label"] for c in every})[:3]
    return [c for k in classes for c in [x for x in every if x.labels["label"] == k][:2]]


@pytest.fixture
def stats(monkeypatch):
    monkeypatch.setattr(api, "get_encoder", lambda name: StatsEncoder())


def test_shards_read_as_a_dataset_embed_exactly_like_the_files(tmp_path, clips):
    write_shards(tmp_path / "wds", clips)
    manifest = read_dataset(str(tmp_path / "wds" / "shards-{000..001}.tar"))
    assert manifest.name == "shards" and len(manifest) == 6
    assert [c.clip_id for c in manifest] == [f"shards-{i // 3:03d}/{i:06d}" for i in range(6)]
    assert [c.labels for c in manifest] == [
        {"label": c.labels["label"], "text": f"the sound of a {c.labels['label']}"} for c in clips
    ]
    assert [(c.fold, c.group) for c in manifest] == [(c.fold, c.group) for c in clips]
    tar0 = (tmp_path / "wds" / "shards-000.tar").resolve()
    assert manifest.clips[1].source == f"{tar0}#000001.flac"
    # the audio_path is a byte-identical copy, so a member is keyed and embedded like the file
    for member, clip in zip(manifest, clips, strict=True):
        assert member.audio_path.read_bytes() == Path(clip.audio_path).read_bytes()
    from_tar = FeatureStore(tmp_path / "a", progress=False).get("w", StatsEncoder(), manifest.clips)
    from_files = FeatureStore(tmp_path / "b", progress=False).get("f", StatsEncoder(), clips)
    np.testing.assert_array_equal(from_tar, from_files)
    assert read_dataset(f"webdataset:{tmp_path / 'wds'}").clips == manifest.clips  # a folder


def test_an_unchanged_shard_is_not_read_again_and_a_changed_one_is(tmp_path, clips, monkeypatch):
    (tar,) = write_shards(tmp_path, clips[:3])
    first = wds_reader.read_shard(tar)
    real = wds_reader._samples

    def no_read(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(wds_reader, "_samples", no_read)
    assert wds_reader.read_shard(tar) == first
    write_shards(tmp_path, clips[3:6])  # the same name, other clips
    monkeypatch.setattr(wds_reader, "_samples", real)
    again = wds_reader.read_shard(tar)
    assert [s.audio.read_bytes() for s in again] == [
        Path(c.audio_path).read_bytes() for c in clips[3:6]
    ]


def test_harken_embed_reads_a_shard_pattern_and_names_the_members(tmp_path, clips, stats, capsys):
    write_shards(tmp_path / "wds", clips)
    out = tmp_path / "emb.npy"
    pattern = str(tmp_path / "wds" / "shards-{000..001}.tar")
    assert main(["embed", pattern, "--encoder", "stats", "--out", str(out)]) == 0
    rows = (tmp_path / "emb.files.txt").read_text().splitlines()
    tars = [(tmp_path / "wds" / f"shards-00{i}.tar").resolve() for i in (0, 1)]
    assert rows == [f"{tars[i // 3]}#{i:06d}.flac" for i in range(6)]
    files = api.embed([str(c.audio_path) for c in clips], "stats", store_dir=tmp_path / "s")
    np.testing.assert_array_equal(np.load(out), files.embeddings)


def test_a_corrupt_member_is_skipped_and_named_by_shard_and_member(tmp_path, clips, stats):
    (tar,) = write_shards(tmp_path, clips[:3], corrupt=1)
    got = api.embed(str(tar), "stats", store_dir=tmp_path / "store")
    member = f"{tar.resolve()}#000001.flac"
    assert got.files == [f"{tar.resolve()}#000000.flac", f"{tar.resolve()}#000002.flac"]
    assert [s.file for s in got.skipped] == [member]
    assert member in got.skipped[0].reason
    assert "webdataset/audio" not in got.skipped[0].reason  # never harken's copy
    with pytest.raises(AudioError, match=r"000001\.flac"):
        api.embed(str(tar), "stats", strict=True, store_dir=tmp_path / "store")


def test_harken_index_of_shards_matches_the_index_of_the_files(tmp_path, clips, monkeypatch):
    class Space:  # the joint space's audio side: StatsEncoder rows as they are
        audio_encoder = StatsEncoder()

        def audio_vectors(self, emb):
            return emb

        def config(self):
            return {"name": "stats"}

    monkeypatch.setattr(api, "joint_space", lambda backend: Space())
    write_shards(tmp_path / "wds", clips)
    from_tar = api.index([str(tmp_path / "wds")], tmp_path / "i1", store_dir=tmp_path / "s1")
    from_files = api.index(
        [str(c.audio_path) for c in clips], tmp_path / "i2", store_dir=tmp_path / "s2"
    )
    np.testing.assert_array_equal(from_tar.embeddings, from_files.embeddings)
    loaded = EmbeddingIndex.load(tmp_path / "i1")
    assert loaded.files[4] == f"{(tmp_path / 'wds' / 'shards-001.tar').resolve()}#000004.flac"


def test_broken_shards_give_errors_naming_the_shard(tmp_path, clips):
    (tar,) = write_shards(tmp_path, clips[:3])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])  # truncated mid-member
    with pytest.raises(DataError, match=r"shards-000\.tar: not a readable tar archive after"):
        read_dataset(str(tar))
    with pytest.raises(DataError, match=r"1 of 2 shard\(s\) not found: .*shards-001\.tar"):
        read_dataset(str(tmp_path / "shards-{000..001}.tar"))
    bad_json = tmp_path / "json" / "x.tar"
    bad_json.parent.mkdir()
    with tarfile.open(bad_json, "w") as t:
        _add(t, "a.wav", Path(clips[0].audio_path).read_bytes())  # a .flac named .wav is fine
        _add(t, "a.json", b"{not json")
    with pytest.raises(DataError, match=r"x\.tar#a\.json: not valid UTF-8 JSON"):
        read_dataset(str(bad_json))


def test_an_experiment_reads_shards_named_beside_its_toml(tmp_path, clips):
    write_shards(tmp_path / "wds", clips)
    toml = tmp_path / "exp.toml"
    toml.write_text(
        "[data]\ndataset = 'wds/shards-{000..001}.tar'\n"
        "[protocol]\nfolds = 3\nn_test = 1\nn_dev = 1\n[methods]\nnames = ['bridge']\n"
    )
    config = ExperimentConfig.from_toml(toml)
    assert config.dataset == str(tmp_path / "wds" / "shards-{000..001}.tar")
    manifest = Experiment(config, RunFolder(tmp_path / "run")).load_data()
    assert manifest.name == "shards"
    assert manifest.labels("label") == [c.labels["label"] for c in clips]


def test_a_shard_is_streamed_not_loaded_whole(tmp_path, shared_data):
    every = read_dataset("kitchen20", shared_data / "kitchen20").clips[:40]
    (tar,) = write_shards(tmp_path / "wds", every, per_shard=40)
    wds_reader.read_shard(write_shards(tmp_path / "warm", every[:1])[0])  # imports, caches
    tracemalloc.start()
    try:
        samples = wds_reader.read_shard(tar)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(samples) == 40
    assert peak < tar.stat().st_size / 4, (peak, tar.stat().st_size)  # measured: ~0.1 of it


def test_shards_export_to_parquet_with_their_json_labels(tmp_path, clips, stats):
    import pyarrow.parquet as pq

    write_shards(tmp_path / "wds", clips)
    pattern = str(tmp_path / "wds" / "shards-{000..001}.tar")
    out = api.export(pattern, tmp_path / "e.parquet", encoder="stats", store_dir=tmp_path / "s")
    table = pq.read_table(out)
    tars = [(tmp_path / "wds" / f"shards-00{i}.tar").resolve() for i in (0, 1)]
    assert table.column("path").to_pylist() == [f"{tars[i // 3]}#{i:06d}.flac" for i in range(6)]
    assert [dict(x)["label"] for x in table.column("labels").to_pylist()] == [
        c.labels["label"] for c in clips
    ]
    expected = FeatureStore(tmp_path / "ref", progress=False).get("f", StatsEncoder(), clips)
    column = table.column("embedding").combine_chunks()
    np.testing.assert_array_equal(column.values.to_numpy().reshape(6, 3), expected)
