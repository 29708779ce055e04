"""``harken export``: an index or a dataset's embeddings to Parquet / ``.npy`` + manifest, round
tripped against the index and the feature store, and never over a file harken did not write."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from harken import api
from harken.cli import main
from harken.data.readers import read_dataset
from harken.errors import ConfigError, DataError
from harken.store import export as exporter
from harken.store.features import FeatureStore
from harken.store.index import EmbeddingIndex

from .conftest import KITCHEN20, StatsEncoder, kitchen20_first


class Space:
    """The audio side of a joint space: StatsEncoder rows, scaled (so index ≠ store rows)."""

    audio_encoder = StatsEncoder()

    def audio_vectors(self, emb):
        return np.asarray(emb, np.float32) * 2

    def config(self):
        return {"name": "stats×2"}


def _csv(tmp_path: Path, clips, corrupt: Path | None = None) -> Path:
    """A generic dataset CSV of ``clips`` with spans on every other clip (and ``corrupt``)."""
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "start", "end"])
        for i, c in enumerate(clips):
            w.writerow([c.audio_path, c.labels["label"], *(("0.5", "3") if i % 2 else ("", ""))])
        if corrupt is not None:
            w.writerow([corrupt, clips[0].labels["label"], "", ""])
    return path


@pytest.fixture
def index(tmp_path, monkeypatch):
    """An index of a 6-clip CSV dataset (spans, labels), built with the real `api.index`."""
    monkeypatch.setattr(api, "joint_space", lambda backend: Space())
    csv_path = _csv(tmp_path, kitchen20_first(6))
    api.index([str(csv_path)], tmp_path / "idx", store_dir=tmp_path / "store", progress=False)
    return tmp_path / "idx"


def _embeddings(table: pa.Table) -> np.ndarray:
    column = table.column("embedding").combine_chunks()
    return column.values.to_numpy().reshape(len(table), column.type.list_size)


def test_parquet_round_trip_equals_the_index(index, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "ROW_GROUP", 4)  # 6 rows: two row groups
    out = api.export(index, tmp_path / "emb.parquet")
    loaded = EmbeddingIndex.load(index)
    table = pq.read_table(out)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    assert pq.ParquetFile(out).num_row_groups == 2
    np.testing.assert_array_equal(_embeddings(table), loaded.embeddings)
    assert table.column("clip_id").to_pylist() == loaded.meta["clips"]
    assert table.column("path").to_pylist() == list(loaded.files)
    assert table.column("start").to_pylist() == [None, 0.5] * 3
    assert table.column("end").to_pylist() == [None, 3.0] * 3
    clips = kitchen20_first(6)
    assert table.column("labels").to_pylist() == [[("label", c.labels["label"])] for c in clips]
    record = json.loads(table.schema.metadata[b"harken"])
    assert record["format"] == "harken-export" and record["rows"] == 6
    assert record["pipeline"]["space_config"] == {"name": "stats×2"}
    assert record["harken_version"]


def test_npy_round_trip_and_manifest(index, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "ROW_GROUP", 4)  # copied in two blocks
    out = api.export(index, tmp_path / "emb.npy")
    loaded = EmbeddingIndex.load(index)
    emb = np.load(out, allow_pickle=False)
    assert emb.dtype == np.float32
    np.testing.assert_array_equal(emb, loaded.embeddings)
    record = json.loads((tmp_path / "emb.json").read_text())
    assert [c["clip_id"] for c in record["clips"]] == loaded.meta["clips"]
    assert [c["path"] for c in record["clips"]] == list(loaded.files)
    assert record["clips"][1]["start"] == 0.5 and record["clips"][0]["start"] is None
    assert {"pipeline", "row_order", "harken_version", "dim", "rows"} <= set(record)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_dataset_and_encoder_export_the_stores_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "get_encoder", lambda name: StatsEncoder())
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"not audio" * 100)
    csv_path = _csv(tmp_path, kitchen20_first(5), corrupt)
    out = api.export(
        csv_path, tmp_path / "emb.parquet", encoder="stats", store_dir=tmp_path / "store"
    )
    clips = read_dataset(str(csv_path)).clips[:5]
    expected = FeatureStore(tmp_path / "ref", progress=False).get("x", StatsEncoder(), clips)
    table = pq.read_table(out)
    np.testing.assert_array_equal(_embeddings(table), expected)
    assert table.column("clip_id").to_pylist() == [c.clip_id for c in clips]
    record = json.loads(table.schema.metadata[b"harken"])
    assert record["pipeline"]["encoder_config"] == StatsEncoder().config()
    assert record["pipeline"]["preprocessing_version"] >= 1
    assert [s["file"] for s in record["skipped"]] == [str(corrupt)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_foreign_files_are_never_overwritten(index, tmp_path):
    foreign = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)  # a Parquet file, but not harken's
    before = foreign.read_bytes()
    with pytest.raises(ConfigError, match="not written by `harken export`"):
        api.export(index, foreign)
    assert foreign.read_bytes() == before
    npy = tmp_path / "theirs.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ConfigError, match="no export manifest"):
        api.export(index, npy)
    sidecar_owner = tmp_path / "new.npy"
    (tmp_path / "new.json").write_text('{"mine": true}')
    with pytest.raises(ConfigError, match="not a `harken export` manifest"):
        api.export(index, sidecar_owner)
    assert not sidecar_owner.exists() and (tmp_path / "new.json").read_text() == '{"mine": true}'
    with pytest.raises(ConfigError, match=r"must end in \.npy"):
        api.export(index, tmp_path / "emb.parquet", format="npy")
    mine = api.export(index, tmp_path / "mine.parquet")
    assert api.export(index, mine) == mine  # its own export is replaced


def test_a_failed_write_keeps_the_old_export_and_leaves_no_temporary(index, tmp_path, monkeypatch):
    out = api.export(index, tmp_path / "emb.parquet")
    before = out.read_bytes()

    def crash(*args):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(exporter, "_table", crash)
    with pytest.raises(RuntimeError):
        api.export(index, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_export_and_its_usage_errors(index, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    assert main(["export", str(index), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert main(["export", str(index), "--out", str(out), "--encoder", "stats"]) == 2
    assert "drop --encoder" in capsys.readouterr().err
    assert main(["export", str(KITCHEN20 / "labels.csv"), "--out", str(out)]) == 2
    assert "--encoder" in capsys.readouterr().err


def test_a_silent_clip_does_not_stop_a_dataset_export(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "get_encoder", lambda name: StatsEncoder())
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    csv_path = _csv(tmp_path, kitchen20_first(2), silent)
    out = api.export(csv_path, tmp_path / "e.npy", encoder="stats", store_dir=tmp_path / "s")
    assert np.load(out).shape == (2, 3)
    with pytest.raises(Exception, match="silent"):
        api.export(
            csv_path, tmp_path / "f.npy", encoder="stats", store_dir=tmp_path / "s", strict=True
        )


def test_an_altered_index_is_refused(index, tmp_path):
    emb = np.load(index / "embeddings.npy")
    emb[0, 0] += 1
    np.save(index / "embeddings.npy", emb)
    with pytest.raises(DataError, match="does not match its sha256"):
        api.export(index, tmp_path / "e.parquet")
    assert not (tmp_path / "e.parquet").exists()
