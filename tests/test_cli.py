"""End to end on real Kitchen20 audio through the CLI: run (generic CSV), predict, embed, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harken.cli import main

CLASSES = [
    "blender",
    "chopping",
    "cutlery",
    "eat",
    "frying-pan",
    "microwave",
    "plates",
    "water-flowing",
]


@pytest.fixture(scope="module")
def small_csv(shared_data, tmp_path_factory) -> Path:
    """A generic-CSV dataset of 8 Kitchen20 classes × 6 real clips (absolute paths)."""
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    folder = tmp_path_factory.mktemp("small")
    out = folder / "clips.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for c in CLASSES:
            for r in [r for r in rows if r["label"] == c][:6]:
                w.writerow([shared_data / "kitchen20" / r["path"], c, r["source_id"]])
    return out


@pytest.fixture(scope="module")
def run_dir(small_csv, tmp_path_factory) -> Path:
    config = small_csv.parent / "exp.toml"
    config.write_text(f"""
[data]
dataset = "{small_csv}"
[protocol]
folds = 2
n_test = 3
n_dev = 2
[methods]
names = ["linear", "conse", "bridge"]
seeds = [0, 1]
[methods.linear]
features = ["yamnet"]
epochs = 4
""")
    out = tmp_path_factory.mktemp("run") / "exp"
    assert main(["run", str(config), "--out", str(out)]) == 0
    return out


def test_run_writes_a_complete_run_folder(run_dir):
    for name in (
        "results.json",
        "results.md",
        "manifest.json",
        "predictions.csv",
        "descriptions.csv",
        "splits/fold0.json",
        "splits/fold1.json",
    ):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["methods"]) == {"linear", "conse", "bridge"}
    assert results["chance"]["UA"] == pytest.approx(1 / 3)
    linear = results["methods"]["linear"]
    assert len(linear["folds"]) == 2 * 2  # folds × seeds
    assert len(results["methods"]["conse"]["folds"]) == 2  # training-free: once per fold
    for r in linear["folds"]:
        assert set(r) >= {"fold", "seed", "test_classes", "UA", "WA", "UP"}
        assert 0.0 <= r["UA"] <= 1.0
    ua = [r["UA"] for r in linear["folds"]]
    assert linear["UA"]["mean"] == pytest.approx(np.mean(ua))
    assert linear["UA"]["std"] == pytest.approx(np.std(ua))


def test_splits_are_class_disjoint_and_test_only_scored(run_dir):
    tested = []
    for k in (0, 1):
        split = json.loads((run_dir / f"splits/fold{k}.json").read_text())
        assert not set(split["train"]) & set(split["test"])
        assert not set(split["dev"]) & set(split["test"])
        assert not set(split["train"]) & set(split["dev"])
        tested += split["test"]
    assert len(tested) == len(set(tested))
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "fold", "seed", "clip_id", "label", "predicted"]
    for r in rows:
        split = json.loads((run_dir / f"splits/fold{r['fold']}.json").read_text())
        assert r["label"] in split["test"] and r["predicted"] in split["test"]


def test_manifest_records_provenance(run_dir):
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["config"]["methods"] == ["linear", "conse", "bridge"]
    assert m["packages"]["torch"].startswith("2.13.0")
    assert m["encoders"]["yamnet"]["policy"]["min_seconds"] > 0
    assert len(m["features"]["yamnet"]["sha256"]) == 16
    assert m["knowledge"]["generator"]["generator"] == "template"
    assert "git_commit" in m and m["timings_s"]["total"] > 0
    assert all(s["selected_on"] for s in m["selection"]["bridge"])


def test_descriptions_exported(run_dir):
    with open(run_dir / "descriptions.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["class"] for r in rows} == set(CLASSES)
    assert all(r["text"] for r in rows)


def test_predict_json_ranks_real_clips(shared_data, capsys):
    clips = [
        shared_data / "kitchen20/audio/blender/0-158737-A-0.flac",
        sorted((shared_data / "kitchen20/audio/water-flowing").glob("*.flac"))[0],
    ]
    code = main(["predict", *map(str, clips), "--labels", "blender,water flowing,sweep", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in out] == [str(c) for c in clips]
    for item in out:
        scores = [r["score"] for r in item["ranking"]]
        assert scores == sorted(scores, reverse=True)
        assert {r["label"] for r in item["ranking"]} == {"blender", "water flowing", "sweep"}
    assert out[0]["ranking"][0]["label"] == "blender"
    assert out[1]["ranking"][0]["label"] == "water flowing"


def test_predict_with_a_run_folder(run_dir, shared_data, capsys):
    clip = shared_data / "kitchen20/audio/blender/0-158737-A-0.flac"
    assert (
        main(["predict", str(clip), "--labels", "blender,sweep", "--model", str(run_dir), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out[0]["ranking"][0]["label"] == "blender"


def test_embed_writes_rows_in_input_order(shared_data, tmp_path):
    clips = sorted((shared_data / "kitchen20/audio/chopping").glob("*.flac"))[:3]
    out = tmp_path / "emb.npy"
    assert main(["embed", *map(str, clips), "--encoder", "yamnet", "--out", str(out)]) == 0
    emb = np.load(out)
    assert emb.dtype == np.float32 and emb.shape == (3, 521)
    rev = tmp_path / "rev.npy"
    assert main(["embed", *map(str, clips[::-1]), "--encoder", "yamnet", "--out", str(rev)]) == 0
    np.testing.assert_array_equal(np.load(rev)[::-1], emb)


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.wav"
    assert main(["predict", str(missing), "--labels", "a,b"]) == 2
    err = capsys.readouterr().err
    assert "nope.wav" in err and "not found" in err


def test_corrupt_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage" * 20)
    assert main(["embed", str(bad), "--out", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "bad.wav" in err and "decode" in err
    assert not (tmp_path / "x.npy").exists()


def test_unknown_label_column_is_a_clear_error(small_csv, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(f'[data]\ndataset = "{small_csv}"\ntarget = "verb"\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "verb" in capsys.readouterr().err


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[protocol]\nfoldz = 3\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "foldz" in capsys.readouterr().err


def test_help_everywhere(capsys):
    for cmd in ([], ["run"], ["demo"], ["predict"], ["embed"]):
        with pytest.raises(SystemExit) as exc:
            main([*cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: harken" in capsys.readouterr().out
