"""Unusable files (missing, empty, silent, corrupt) are skipped and listed by ``predict``,
``index`` and the features stage of ``run``; ``strict`` makes them fatal."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from harken import api
from harken.cli import main
from harken.data.manifest import Manifest
from harken.errors import AudioError, DataError
from harken.experiment import Experiment, ExperimentConfig
from harken.store.runs import RunFolder

from .conftest import KITCHEN20, StatsEncoder, kitchen20_first


@pytest.fixture
def bad(tmp_path) -> dict:
    files = {"silent": tmp_path / "silent.wav", "corrupt": tmp_path / "corrupt.flac"}
    sf.write(files["silent"], np.zeros(16000, np.float32), 16000)
    files["corrupt"].write_bytes(b"not audio" * 100)
    files["missing"] = tmp_path / "missing.wav"
    return files


# --- the features stage of a run ---------------------------------------------------------------


def _experiment(tmp_path, strict: bool = False) -> Experiment:
    config = ExperimentConfig(store_dir=str(tmp_path / "store"), progress=False, strict=strict)
    exp = Experiment(config, RunFolder(tmp_path / "run"))
    exp._encoders["stats"] = StatsEncoder()
    return exp


def _manifest(bad: dict) -> Manifest:
    clips = kitchen20_first(6)
    clips[1] = replace(clips[1], audio_path=bad["silent"])
    clips[4] = replace(clips[4], audio_path=bad["corrupt"])
    return Manifest("kitchen20", clips)


def test_the_features_stage_skips_bad_clips_and_records_them(tmp_path, bad):
    exp = _experiment(tmp_path)
    manifest = _manifest(bad)
    kept, features = exp.features(manifest, {"stats"})
    good = [manifest.clips[i] for i in (0, 2, 3, 5)]
    assert kept.clips == good and kept.name == "kitchen20"
    reference = StatsEncoder()
    np.testing.assert_array_equal(features["stats"], exp.store.get("kitchen20", reference, good))
    assert reference.calls == []
    assert [s["clip_id"] for s in exp.skipped] == [
        manifest.clips[1].clip_id,
        manifest.clips[4].clip_id,
    ]
    assert exp.skipped[0]["file"] == str(bad["silent"])
    assert "stats:" in exp.skipped[0]["reasons"][0] and "silent" in exp.skipped[0]["reasons"][0]
    record = exp.provenance(kept, 4, features, {})
    assert record["skipped_clips"] == exp.skipped
    assert record["dataset"]["clips"] == 4


def test_a_strict_run_stops_at_the_first_bad_clip(tmp_path, bad):
    with pytest.raises(AudioError, match="silent"):
        _experiment(tmp_path, strict=True).features(_manifest(bad), {"stats"})


def test_a_run_where_every_clip_failed_is_an_error(tmp_path, bad):
    clips = [replace(c, audio_path=bad["silent"]) for c in kitchen20_first(3)]
    with pytest.raises(DataError, match="none of the 3 clips"):
        _experiment(tmp_path).features(Manifest("kitchen20", clips), {"stats"})


def test_harken_run_proceeds_on_the_good_clips_and_lists_the_bad(tmp_path, bad, capsys):
    with open(KITCHEN20 / "labels.csv", newline="") as f:
        every = list(csv.DictReader(f))
    labels = sorted({r["label"] for r in every})[:4]
    rows = [
        {"path": str(KITCHEN20 / r["path"]), "label": r["label"]}
        for label in labels
        for r in [r for r in every if r["label"] == label][:5]
    ]
    rows.append({"path": str(bad["silent"]), "label": labels[0]})
    dataset = tmp_path / "clips.csv"
    with open(dataset, "w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    config = tmp_path / "run.toml"
    config.write_text(
        f'[data]\ndataset = "{dataset}"\n[protocol]\nprotocol = "all-classes"\n'
        '[methods]\nnames = ["conse"]\nseeds = [0]\n'
    )
    store = ["--store-dir", str(tmp_path / "store")]
    assert main(["run", str(config), "--out", str(tmp_path / "out"), *store]) == 0
    err = capsys.readouterr().err
    assert f"harken: skipped {bad['silent']}" in err and "silent" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["file"] for s in manifest["skipped_clips"]] == [str(bad["silent"])]
    assert manifest["dataset"]["clips"] == 20
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "conse" in results["methods"]
    strict = ["run", str(config), "--out", str(tmp_path / "strict"), *store, "--strict"]
    assert main(strict) == 1
    assert "silent" in capsys.readouterr().err


# --- predict and index -------------------------------------------------------------------------


def test_predict_ranks_the_good_files_and_lists_the_bad(bad):
    good = [str(c.audio_path) for c in kitchen20_first(2)]
    files = [good[0], str(bad["silent"]), str(bad["missing"]), good[1]]
    out = api.predict(files, ["blender", "water flowing"])
    assert [item.file for item in out] == good
    assert [b.file for b in out.skipped] == [str(bad["silent"]), str(bad["missing"])]
    assert "not found" in out.skipped[1].reason
    with pytest.raises(AudioError, match="silent"):
        api.predict([good[0], str(bad["silent"])], ["blender", "water flowing"], strict=True)
    with pytest.raises(DataError, match="none of the 2 files"):
        api.predict([str(bad["silent"]), str(bad["corrupt"])], ["blender", "water flowing"])


def test_index_leaves_bad_files_out_and_records_them(tmp_path, bad, capsys):
    good = [str(c.audio_path) for c in kitchen20_first(3)]
    inputs = [*good, str(bad["corrupt"]), str(bad["missing"])]
    out = tmp_path / "idx"
    store = ["--store-dir", str(tmp_path / "store")]
    assert main(["index", *inputs, "--out", str(out), *store]) == 0
    err = capsys.readouterr().err
    assert "corrupt.flac" in err and "missing.wav" in err
    header = json.loads((out / "index.json").read_text())
    assert header["count"] == 3
    assert [s["file"] for s in header["meta"]["skipped"]] == [
        str(bad["corrupt"]),
        str(bad["missing"]),
    ]
    assert main(["index", *inputs, "--out", str(tmp_path / "strict"), *store, "--strict"]) == 1
    assert not (tmp_path / "strict").exists()
