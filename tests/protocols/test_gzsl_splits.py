"""GZSL splits: the benchmark's stage invariants and harken-made splits of Kitchen20."""

from __future__ import annotations

import csv
import json

import pytest

from harken.errors import ConfigError, DataError
from harken.protocols.gzsl_splits import (
    STAGES,
    GzslSplit,
    make_gzsl_split,
    read_gzsl_split,
    write_gzsl_split,
)


@pytest.fixture(scope="module")
def kitchen20(shared_data):
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    return [r["path"] for r in rows], [r["label"] for r in rows], [r["source_id"] for r in rows]


def _groups_of(split, stages, ids, groups):
    group = dict(zip(ids, groups, strict=True))
    return {group[c] for s in stages for c in split.clips[s]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kitchen20_split_holds_out_whole_recording_sources(kitchen20, seed):
    ids, labels, groups = kitchen20
    split = make_gzsl_split(ids, labels, groups, seed=seed)
    # a quarter of 20 classes unseen at each stage
    assert (len(split.seen_1), len(split.unseen_1), len(split.unseen_2)) == (10, 5, 5)
    assert len(split.seen_2) == 15
    # validation clips share no source with stage-1 training clips; test clips none with
    # stage-2 training clips
    train_1 = _groups_of(split, ["stage_1_train"], ids, groups)
    val = _groups_of(split, ["stage_1_val_seen", "stage_1_val_unseen"], ids, groups)
    assert not train_1 & _groups_of(split, ["stage_1_val_seen"], ids, groups)
    train_2 = _groups_of(split, ["stage_2_train"], ids, groups)
    assert not train_2 & _groups_of(split, ["stage_2_test_seen"], ids, groups)
    assert val <= train_2
    # every clip is evaluated or trained on exactly once per stage
    stage_2 = [
        c
        for s in ("stage_2_train", "stage_2_test_seen", "stage_2_test_unseen")
        for c in split.clips[s]
    ]
    assert sorted(stage_2) == sorted(ids)
    label = dict(zip(ids, labels, strict=True))
    for stage in STAGES:
        assert {label[c] for c in split.clips[stage]} == set(split.classes[stage]), stage
    # roughly the held-out share of each seen class is held out for testing
    test_seen = len(split.clips["stage_2_test_seen"])
    n_seen_2 = sum(label[c] in split.seen_2 for c in ids)
    assert 0.18 < test_seen / n_seen_2 < 0.35


def test_splits_are_deterministic_and_seeded(kitchen20):
    ids, labels, groups = kitchen20
    a, b = (
        make_gzsl_split(ids, labels, groups, seed=0),
        make_gzsl_split(ids, labels, groups, seed=0),
    )
    assert a == b
    assert make_gzsl_split(ids, labels, groups, seed=1).unseen_2 != a.unseen_2


def test_a_source_under_two_classes_is_never_held_out():
    ids = [f"c{i}" for i in range(40)]
    labels = [f"class{i // 8}" for i in range(40)]  # 5 classes × 8 clips
    groups = [f"g{i // 2}" for i in range(40)]
    groups[7] = groups[8] = "shared"  # last clip of class0 and first of class1
    split = make_gzsl_split(ids, labels, groups, n_val_unseen=1, n_test_unseen=1, held_out=0.25)
    held = {c for s in ("stage_1_val_seen", "stage_2_test_seen") for c in split.clips[s]}
    assert "c7" not in held and "c8" not in held


def test_round_trip(tmp_path, kitchen20):
    split = make_gzsl_split(*kitchen20, seed=3)
    write_gzsl_split(split, tmp_path / "s.json")
    assert read_gzsl_split(tmp_path / "s.json") == split


def _valid() -> dict:
    return {
        "classes": {
            "stage_1_train": ["a", "b"],
            "stage_1_val_seen": ["a", "b"],
            "stage_1_val_unseen": ["c"],
            "stage_2_train": ["a", "b", "c"],
            "stage_2_test_seen": ["a", "b", "c"],
            "stage_2_test_unseen": ["d"],
        },
        "clips": {s: [f"{s}-0"] for s in STAGES},
    }


def test_invariants_are_enforced():
    GzslSplit.from_dict(_valid())
    bad = _valid()
    bad["classes"]["stage_2_test_unseen"] = ["d", "a"]  # a test-unseen class that was trained on
    with pytest.raises(DataError, match="stage_2_test_unseen ∩ S₂"):
        GzslSplit.from_dict(bad)
    bad = _valid()
    bad["classes"]["stage_1_val_unseen"] = ["c", "b"]
    with pytest.raises(DataError, match="stage_1_val_unseen"):
        GzslSplit.from_dict(bad)
    bad = _valid()
    bad["clips"]["stage_2_test_seen"] = ["stage_2_train-0"]  # a test clip trained on
    with pytest.raises(DataError, match="in both stage_2_test_seen and stage_2_train"):
        GzslSplit.from_dict(bad)


def test_bad_split_files(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="not JSON"):
        read_gzsl_split(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"classes": {}}))
    with pytest.raises(DataError, match="not a GZSL split file"):
        read_gzsl_split(tmp_path / "y.json")
    with pytest.raises(DataError, match="not found"):
        read_gzsl_split(tmp_path / "missing.json")


def test_bad_requests(kitchen20):
    ids, labels, groups = kitchen20
    with pytest.raises(ConfigError, match="cannot give"):
        make_gzsl_split(ids, labels, groups, n_val_unseen=10, n_test_unseen=10)
    with pytest.raises(ConfigError, match="held_out"):
        make_gzsl_split(ids, labels, groups, held_out=0.6)
    one_group = ["same"] * len(ids)
    with pytest.raises(ConfigError, match="too few recording groups"):
        make_gzsl_split(ids, labels, one_group)


def test_the_benchmarks_split_files_over_a_datasets_clips(tmp_path):
    from harken.data.readers.avgzsl import read_avgzsl_split, write_synthetic_features
    from harken.protocols.gzsl_splits import from_avgzsl

    root = write_synthetic_features(tmp_path, "UCF", "cls_split", "avca", n_per_class=2)
    av = read_avgzsl_split(root / "class-split" / "cls_split")
    files = {f for rows in av.clips.values() for f, _ in rows}
    clip_ids = [f"videos/{f}.mp4" for f in sorted(files)]  # ids with folders and extensions
    split = from_avgzsl(av, clip_ids)
    assert set(split.unseen_2) == set(av.classes["stage_2_test_unseen"])
    assert all(c.startswith("videos/") for s in STAGES for c in split.clips[s])
    assert sorted(split.clips["stage_2_train"]) == sorted(
        c
        for s in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
        for c in split.clips[s]
    )
    with pytest.raises(DataError, match="not in the dataset"):
        from_avgzsl(av, clip_ids[:3])
