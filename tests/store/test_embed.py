"""``harken embed`` / ``api.embed`` through the feature store: streamed rows, the row → file
list, skipped files, resumption and the output-path checks made before any work."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from harken import api
from harken.cli import main
from harken.errors import AudioError, ConfigError, DataError
from harken.store.features import FeatureStore

from .conftest import StatsEncoder, kitchen20_first


@pytest.fixture
def stats_encoder(monkeypatch):
    """``api.embed`` gets the test encoder (the real store, decoding and writing code run)."""
    made: list[StatsEncoder] = []

    def get(name):
        encoder = StatsEncoder(fail_after=1 if name == "crashing" else None)
        made.append(encoder)
        return encoder

    monkeypatch.setattr(api, "get_encoder", get)
    return made


def _files(n: int) -> list[str]:
    return [str(c.audio_path) for c in kitchen20_first(n)]


def _bad(tmp_path) -> tuple[str, str]:
    silent, corrupt = tmp_path / "silent.wav", tmp_path / "corrupt.flac"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    corrupt.write_bytes(b"not audio" * 100)
    return str(silent), str(corrupt)


def test_embed_streams_rows_in_input_order_and_lists_them(tmp_path, stats_encoder):
    files = _files(5)
    silent, corrupt = _bad(tmp_path)
    inputs = [files[0], silent, *files[1:3], corrupt, *files[3:]]
    out = tmp_path / "emb.npy"
    got = api.embed(inputs, "stats", out, store_dir=tmp_path / "store")
    emb = np.load(out, allow_pickle=False)
    assert emb.dtype == np.float32 and emb.shape == (5, 3)
    reference = FeatureStore(tmp_path / "ref", progress=False).get(
        "files", StatsEncoder(), kitchen20_first(5)
    )
    np.testing.assert_array_equal(emb, reference)
    np.testing.assert_array_equal(got.embeddings, reference)
    assert (tmp_path / "emb.files.txt").read_text().splitlines() == files == got.files
    assert [b.file for b in got.skipped] == [silent, corrupt]
    assert "silent" in got.skipped[0].reason
    left = {"emb.files.txt", "emb.json", "emb.npy", "ref", "store", "corrupt.flac", "silent.wav"}
    assert {p.name for p in tmp_path.iterdir()} == left  # no temporary files


def test_embed_strict_stops_at_the_first_bad_file_and_writes_nothing(tmp_path, stats_encoder):
    silent, _ = _bad(tmp_path)
    out = tmp_path / "emb.npy"
    with pytest.raises(AudioError, match="silent"):
        api.embed([*_files(2), silent], "stats", out, strict=True, store_dir=tmp_path / "s")
    assert not out.exists() and not (tmp_path / "emb.files.txt").exists()


def test_embed_with_every_file_bad_is_a_data_error(tmp_path, stats_encoder):
    silent, corrupt = _bad(tmp_path)
    with pytest.raises(DataError, match="none of the 2 files"):
        api.embed([silent, corrupt], "stats", tmp_path / "e.npy", store_dir=tmp_path / "s")
    assert not (tmp_path / "e.npy").exists()


def test_a_killed_embed_is_resumed_from_its_finished_shards(tmp_path, stats_encoder):
    files, store, out = _files(70), tmp_path / "store", tmp_path / "emb.npy"
    with pytest.raises(RuntimeError, match="simulated"):
        api.embed(files, "crashing", out, store_dir=store)  # dies in the second shard
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    got = api.embed(files, "stats", out, store_dir=store)
    assert (got.report.cached, got.report.shards_reused, got.report.encoded) == (64, 1, 6)
    assert stats_encoder[-1].calls == [6]
    assert np.load(out).shape == (70, 3)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("folder", "is a folder"),
        ("missing/emb.npy", "does not exist"),
        ("emb.txt", "must end in .npy"),
    ],
)
def test_a_bad_out_path_is_refused_before_any_work(tmp_path, monkeypatch, name, message):
    (tmp_path / "folder").mkdir()

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the --out check")

    monkeypatch.setattr(api, "get_encoder", no_work)
    monkeypatch.setattr(api, "expand_inputs", no_work)
    with pytest.raises(ConfigError, match=message):
        api.embed(_files(1), "yamnet", tmp_path / name)
    assert main(["embed", *_files(1), "--out", str(tmp_path / name)]) == 2


def test_cli_embed_lists_skipped_files_on_stderr(tmp_path, stats_encoder, capsys):
    silent, corrupt = _bad(tmp_path)
    out = tmp_path / "emb.npy"
    args = ["embed", *_files(2), silent, corrupt, "--encoder", "stats", "--out", str(out)]
    assert main([*args, "--store-dir", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if x.startswith("harken: skipped")]
    assert len(lines) == 2
    assert silent in lines[0] and "silent" in lines[0] and corrupt in lines[1]
    assert np.load(out).shape == (2, 3)
    assert main([*args, "--store-dir", str(tmp_path / "s"), "--strict"]) == 1
