"""AV-GZSL split files (real, all three datasets × both splits) and published-feature layouts
(synthetic releases in the AVCA and ClipClap formats)."""

from __future__ import annotations

import csv
import pickle
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from harken.data.readers.avgzsl import (
    STAGES,
    load_published_features,
    read_avgzsl_split,
    readable_names,
    write_synthetic_features,
)
from harken.errors import ConfigError, DataError

SPLITS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "avgzsl-splits"
KDA = SPLITS.parent / "kda-descriptions"
DIMS = {"audio": 6, "video": 4, "w2v": 5, "clip": 5, "clap": 7}

# stage → (classes, clips; None where upstream has no csv)
EXPECTED = {
    ("UCF", "main_split"): ([30, 30, 12, 42, 42, 9], [3174, 353, 1467, 4994, 555, 1267]),
    ("UCF", "cls_split"): ([30, 30, 12, 42, 42, 6], [3174, 353, 1467, 4994, 555, 845]),
    ("ActivityNet", "main_split"): (
        [99, 99, 51, 150, 150, 50],
        [9204, 1023, 4307, 14534, 1615, 4199],
    ),
    ("ActivityNet", "cls_split"): (
        [99, 99, 51, 150, 150, 48],
        [9204, 1023, 4307, 14534, 1615, 4052],
    ),
    ("VGGSound", "main_split"): (
        [138, 138, 69, 207, 207, 69],
        [None, 7817, 3102, None, 9032, 3450],
    ),
    ("VGGSound", "cls_split"): (
        [138, 138, 69, 207, 207, 64],
        [None, 7817, 3102, None, 9032, 3200],
    ),
}
# cls_split leaves these test-unseen classes out of its class list but not out of its csv
CLS_EXCLUDED = {
    "UCF": {"BandMarching": 155, "BrushingTeeth": 131, "Typing": 136},
    "ActivityNet": {"Brushingteeth": 78, "Knitting": 69},
    "VGGSound": {
        c: 50 for c in ["airplane", "helicopter", "sharpen knife", "thunder", "wind chime"]
    },
}


@pytest.fixture(scope="module")
def splits() -> Path:
    if not (SPLITS / "UCF" / "class-split" / "all_class.txt").is_file():
        pytest.skip(f"AV-GZSL split files not found at {SPLITS}")
    return SPLITS


def copy_split(splits: Path, tmp_path: Path, dataset: str = "UCF", split: str = "main_split"):
    """A writable copy of one real split folder (and its parent's tables) under tmp_path."""
    src = splits / dataset / "class-split"
    dst = tmp_path / dataset / "class-split"
    (dst / split).mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file():
            (dst / path.name).write_bytes(path.read_bytes())
    for path in (src / split).iterdir():
        (dst / split / path.name).write_bytes(path.read_bytes())
    return dst / split


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def kda_names(dataset: str) -> list[str]:
    with open(KDA / f"{dataset}.csv", newline="") as f:
        return [row["name"] for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------- real split files


@pytest.mark.parametrize(("dataset", "split"), list(EXPECTED))
def test_real_splits(splits, dataset, split):
    s = read_avgzsl_split(splits / dataset / "class-split" / split)
    n_classes, n_clips = EXPECTED[(dataset, split)]
    assert s.name == f"{dataset}/{split}"
    assert [len(s.classes[stage]) for stage in STAGES] == n_classes
    assert [len(s.clips[st]) if st in s.clips else None for st in STAGES] == n_clips
    c = {stage: set(names) for stage, names in s.classes.items()}
    assert c["stage_1_val_seen"] <= c["stage_1_train"]
    assert not c["stage_1_val_unseen"] & c["stage_1_train"]
    assert c["stage_2_train"] == c["stage_1_train"] | c["stage_1_val_unseen"]
    assert not c["stage_2_test_unseen"] & c["stage_2_train"]
    assert c["stage_2_test_seen"] <= c["stage_2_train"]
    for stage, rows in s.clips.items():
        assert {label for _, label in rows} == c[stage]
    assert s.excluded == (
        {"stage_2_test_unseen": CLS_EXCLUDED[dataset]} if split == "cls_split" else {}
    )
    assert len(s.all_classes) == {"UCF": 101, "ActivityNet": 200, "VGGSound": 309}[dataset]
    assert set(s.readable) == set(s.class_names)


def test_real_ucf_names(splits):
    s = read_avgzsl_split(splits / "UCF" / "class-split" / "cls_split")
    assert s.classes["stage_2_test_unseen"] == [
        "BlowDryHair",
        "CuttingInKitchen",
        "PlayingFlute",
        "PlayingSitar",
        "ShavingBeard",
        "WritingOnBoard",
    ]
    assert s.clips["stage_1_val_seen"][0] == ("v_Archery_g01_c06", "Archery")
    # the split spells HandStandPushups, all_class.txt and the w2v table HandstandPushups
    assert "HandStandPushups" in s.classes["stage_1_train"]
    assert "HandstandPushups" in s.all_classes
    assert s.readable["HandStandPushups"] == "Handstand Pushups"
    assert s.readable["CuttingInKitchen"] == "Cut Kitchen"
    v = read_avgzsl_split(splits / "VGGSound" / "class-split" / "main_split")
    assert v.readable["bird chirping, tweeting"] == "bird chirping"


@pytest.mark.parametrize("dataset", ["UCF", "ActivityNet", "VGGSound"])
def test_readable_names_match_kda(splits, dataset):
    kda = set(kda_names(dataset))
    s = read_avgzsl_split(splits / dataset / "class-split" / "main_split")
    assert all(name in kda for name in readable_names(s).values())  # the w2v manual names
    assert all(name in kda for name in readable_names(s, kda).values())


@pytest.mark.parametrize(
    ("dataset", "exact", "matched", "total"),
    [("UCF", 9, 50, 51), ("ActivityNet", 48, 200, 200), ("VGGSound", 252, 253, 276)],
)
def test_readable_names_without_w2v_table(splits, tmp_path, dataset, exact, matched, total):
    folder = copy_split(splits, tmp_path, dataset)
    for table in folder.parent.glob("*_w2v_class_names.csv"):
        table.unlink()
    s = read_avgzsl_split(folder)
    kda = set(kda_names(dataset))
    assert sum(c in kda for c in s.class_names) == exact
    names = readable_names(s, kda)
    assert len(names) == total and sum(v in kda for v in names.values()) == matched
    if dataset == "UCF":  # case, spaces and punctuation ignored; "Cut Kitchen" is no spelling
        assert names["ApplyEyeMakeup"] == "Apply Eye Makeup"
        assert names["CuttingInKitchen"] == "CuttingInKitchen"


def test_readable_names_ambiguous_target_not_matched(splits, tmp_path):
    s = read_avgzsl_split(copy_split(splits, tmp_path))
    names = readable_names(s, ["Archery", "archery", "Apply-Eye-Makeup", "Apply_Eye_Makeup"])
    assert names["Archery"] == "Archery"  # exact wins
    assert names["ApplyEyeMakeup"] == "Apply Eye Makeup"  # two loose candidates: none taken


# ---------------------------------------------------------------------------- malformed splits


def test_missing_folder_and_stage_file(splits, tmp_path):
    with pytest.raises(DataError, match="split folder not found"):
        read_avgzsl_split(tmp_path / "nowhere")
    folder = copy_split(splits, tmp_path)
    (folder / "stage_1_val_unseen.txt").unlink()
    with pytest.raises(DataError, match=r"stage_1_val_unseen\.txt: class list not found"):
        read_avgzsl_split(folder)


def test_csv_optional_and_column_order_free(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    (folder / "stage_1_train.csv").unlink()
    with open(folder / "stage_1_val_seen.csv", newline="") as f:
        rows = list(csv.reader(f))
    with open(folder / "stage_1_val_seen.csv", "w", newline="") as f:
        csv.writer(f).writerows([[r[2], r[0], r[1]] for r in rows])  # label_code,filename,label
    s = read_avgzsl_split(folder)
    assert "stage_1_train" not in s.clips and len(s.classes["stage_1_train"]) == 30
    assert s.clips["stage_1_val_seen"][0] == ("v_Archery_g01_c06", "Archery")


def test_whitespace_crlf_and_case_tolerated(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    txt = folder / "stage_1_train.txt"
    txt.write_bytes(b"\r\n".join(f"  {n} ".encode() for n in txt.read_text().split()) + b"\r\n\r\n")
    edit(
        folder / "stage_1_val_seen.csv", "v_Archery_g01_c06,Archery,", "v_Archery_g01_c06,ARCHERY,"
    )
    s = read_avgzsl_split(folder)
    assert s.classes["stage_1_train"][0] == "Archery"
    assert s.clips["stage_1_val_seen"][0] == ("v_Archery_g01_c06", "Archery")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("v_Archery_g01_c06,Archery,2", "v_Archery_g01_c06,,2", "line 2: empty filename, label"),
        (
            "v_Archery_g01_c06,Archery,2",
            "v_Archery_g01_c06,Archery,two",
            "line 2: label_code 'two'",
        ),
        ("v_Archery_g01_c06,Archery,2", "v_Archery_g01_c06,Archery,2,x", "line 2: 4 fields"),
        ("v_Archery_g01_c06,Archery,2", "v_Archery_g01_c06,Archery,3", "line 2: class 'Archery'"),
        ("v_Archery_g02_c06,Archery,2", "v_Archery_g01_c06,Archery,2", "line 3: clip .* again"),
        (
            "v_Archery_g01_c06,Archery,2",
            "v_Archery_g01_c06,Archeri,2",
            "line 2: class 'Archeri' is not",
        ),
        ("filename,label,label_code", "filename,class,label_code", "missing column"),
    ],
)
def test_malformed_csv_names_file_and_line(splits, tmp_path, old, new, message):
    folder = copy_split(splits, tmp_path)
    edit(folder / "stage_1_val_seen.csv", old, new)
    with pytest.raises(DataError, match=rf"stage_1_val_seen\.csv.*{message}"):
        read_avgzsl_split(folder)


def test_label_code_must_agree_across_files(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    (folder.parent / "all_class.txt").unlink()  # only the cross-file check is left
    edit(folder / "stage_2_train.csv", "v_Archery_g01_c01,Archery,2", "v_Archery_g01_c01,Archery,7")
    with pytest.raises(
        DataError, match=r"'Archery' has label_code 7 but 2 in .*stage_1_train\.csv"
    ):
        read_avgzsl_split(folder)


def test_label_code_must_be_the_sorted_all_class_index(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    edit(folder / "stage_1_train.csv", "v_Archery_g01_c01,Archery,2", "v_Archery_g01_c01,Archery,7")
    with pytest.raises(DataError, match=r"stage_1_train\.csv, line 2: .* number 2 in the sorted"):
        read_avgzsl_split(folder)


def test_clip_of_another_stages_class(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    with open(folder / "stage_1_val_seen.csv", "a") as f:
        f.write("v_ApplyEyeMakeup_g99_c01,ApplyEyeMakeup,0\n")  # a stage_1_val_unseen class
    with pytest.raises(DataError, match=r"line 355: .*it is in stage_1_val_unseen\.txt"):
        read_avgzsl_split(folder)


def test_duplicate_class_line(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    with open(folder / "stage_1_train.txt", "a") as f:
        f.write("Archery\n")
    with pytest.raises(DataError, match=r"stage_1_train\.txt, line 31: class 'Archery' .* again"):
        read_avgzsl_split(folder)


@pytest.mark.parametrize(
    ("stage", "line", "message"),
    [
        ("stage_1_val_seen", "Basketball", "stage_1_val_seen must be a subset of stage_1_train"),
        ("stage_1_val_unseen", "Archery", "stage_1_val_unseen and stage_1_train share 'Archery'"),
        ("stage_2_train", "Basketball", "stage_2_train must be .*extra 'Basketball'"),
        ("stage_2_test_unseen", "Archery", "stage_2_test_unseen and stage_2_train share"),
        ("stage_2_test_seen", "Basketball", "stage_2_test_seen must be a subset of stage_2_train"),
    ],
)
def test_invariants(splits, tmp_path, stage, line, message):
    folder = copy_split(splits, tmp_path)
    with open(folder / f"{stage}.txt", "a") as f:
        f.write(f"{line}\n")
    with pytest.raises(DataError, match=message):
        read_avgzsl_split(folder)


def test_invariant_spelling_hint_and_missing_class(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    edit(folder / "stage_1_val_seen.txt", "HandStandPushups", "HandstandPushups")
    edit(folder / "stage_1_val_seen.csv", ",HandStandPushups,", ",HandstandPushups,", count=-1)
    with pytest.raises(DataError, match=r"'HandstandPushups' \(spelled 'HandStandPushups' there\)"):
        read_avgzsl_split(folder)
    folder = copy_split(splits, tmp_path / "b")
    edit(folder / "stage_2_train.txt", "Archery\n", "")
    edit(folder / "stage_2_test_seen.txt", "Archery\n", "")
    (folder / "stage_2_train.csv").unlink()
    (folder / "stage_2_test_seen.csv").unlink()
    with pytest.raises(DataError, match=r"stage_2_train must be .*missing 'Archery'"):
        read_avgzsl_split(folder)


def test_clip_leak_between_stages(splits, tmp_path):
    folder = copy_split(splits, tmp_path)
    with open(folder / "stage_2_test_seen.csv", "a") as f:
        f.write("v_Archery_g01_c01,Archery,2\n")  # a stage_1_train clip
    with pytest.raises(DataError, match="'v_Archery_g01_c01' is in both stage_1_train and stage_2"):
        read_avgzsl_split(folder)


# ---------------------------------------------------------------------------- published features


def check_aligned(features, index: dict[str, int]) -> None:
    """Column 0 of every row is its class's index and column 1 the clip's number (synthetic)."""
    for stage, rows in features.stages.items():
        assert len(rows.ids) == len(rows.labels) == len(rows.audio) == len(rows.video), stage
        assert rows.audio.dtype == rows.video.dtype == np.float32
        expected = [index[label.casefold()] for label in rows.labels]
        np.testing.assert_array_equal(rows.audio[:, 0], expected)
        np.testing.assert_array_equal(rows.video[:, 0], expected)
        np.testing.assert_array_equal(rows.audio[:, 1], rows.video[:, 1])  # same clip per row
        assert all(
            i.startswith(f"{label}-") for i, label in zip(rows.ids, rows.labels, strict=True)
        )
    for vectors in features.class_embeddings.values():
        for cls, vector in vectors.items():
            assert vector[0] == index[cls.casefold()], cls


def synthetic_index() -> dict[str, int]:
    names = ["Archery", "BabyCrawling", "CleanAndJerk", "Drumming", "Fencing"]
    names += ["HandstandPushups", "Knitting", "YoYo", "Typing"]
    return {n.casefold(): i for i, n in enumerate(names)}


@pytest.mark.parametrize("release", ["avca", "clipclap"])
def test_synthetic_round_trip(tmp_path, release):
    ds_root = write_synthetic_features(
        tmp_path, "UCF", "cls_split", release, n_per_class=3, dims=DIMS
    )
    assert ds_root == tmp_path / "avgzsl_benchmark_datasets" / "UCF"
    f = load_published_features(tmp_path, "ucf")  # release and feature set detected
    assert (f.release, f.dataset, f.split) == (release, "UCF", "cls_split")
    assert f.feature_set == ("cls_features" if release == "avca" else "cls_features_non_averaged")
    assert list(f.stages) == list(STAGES)
    sizes = {s: len(rows) for s, rows in f.stages.items()}
    assert sizes == {
        "stage_1_train": 9,
        "stage_1_val_seen": 9,
        "stage_1_val_unseen": 6,
        "stage_2_train": 24,
        "stage_2_test_seen": 15,
        "stage_2_test_unseen": 9,
    }
    rows = f.stages["stage_2_test_unseen"]
    assert rows.audio.shape == (9, 6) and rows.video.shape == (9, 4)
    assert rows.labels[:3] == ["HandStandPushups"] * 3 and "Typing" not in rows.labels
    assert rows.ids[0] == "HandStandPushups-s2testunseen-000"
    sources = {"avca": {"w2v": 5}, "clipclap": {"clip": 5, "clap": 7}}[release]
    assert {s: len(next(iter(v.values()))) for s, v in f.class_embeddings.items()} == sources
    for vectors in f.class_embeddings.values():
        # keyed by class name although the files are keyed by manual / CLIP names
        assert {"CleanAndJerk", "HandStandPushups", "YoYo", "Archery"} <= set(vectors)
    check_aligned(f, synthetic_index())
    assert any("Typing" in note for note in f.notes)


@pytest.mark.parametrize("release", ["avca", "clipclap"])
def test_stage_2_train_rebuilt_when_absent(tmp_path, release):
    ds_root = write_synthetic_features(tmp_path, "VGGSound", "main_split", release, dims=DIMS)
    full = load_published_features(ds_root, "VGGSound", "main_split", release)
    feature_dir = ds_root / "features" / full.feature_set
    for modality in ("audio", "video"):
        shutil.rmtree(feature_dir / modality / "stage_2_train")
    f = load_published_features(ds_root, "VGGSound", "main_split", release)
    rebuilt, written = f.stages["stage_2_train"], full.stages["stage_2_train"]
    assert sorted(rebuilt.ids) == sorted(written.ids)
    assert rebuilt.ids == [i for s in STAGES[:3] for i in f.stages[s].ids]
    assert any("rebuilt" in note for note in f.notes)
    check_aligned(f, synthetic_index())


def test_root_forms_and_explicit_arguments(tmp_path):
    ds_root = write_synthetic_features(tmp_path, "ActivityNet", "main_split", "avca", dims=DIMS)
    for root in (tmp_path, tmp_path / "avgzsl_benchmark_datasets", ds_root):
        f = load_published_features(root, "ActivityNet", "main_split", "avca", "main_features")
        assert f.root == ds_root and len(f.stages["stage_1_train"]) == 6


def test_real_class_lists_with_split_dir(splits, tmp_path):
    real = splits / "UCF" / "class-split" / "cls_split"
    write_synthetic_features(
        tmp_path, "UCF", "cls_split", "clipclap", n_per_class=1, dims=DIMS, split_dir=real
    )
    f = load_published_features(tmp_path, "UCF", split_dir=real)  # the real split files decide
    assert [len(f.stages[s]) for s in STAGES] == [30, 30, 12, 72, 42, 6]
    assert "HandStandPushups" in f.stages["stage_1_train"].labels
    assert len(f.class_embeddings["clip"]) == 101
    all_classes = (real.parent / "all_class.txt").read_text().split()
    check_aligned(f, {c.casefold(): i for i, c in enumerate(all_classes)})
    assert any("not in stage_1_train.csv" in note for note in f.notes)  # synthetic clip names


def test_avca_fixed_length_names_as_in_readme(tmp_path):
    ds_root = write_synthetic_features(tmp_path, "UCF", "main_split", "avca", dims=DIMS)
    path = ds_root / "features" / "main_features" / "audio" / "stage_1_train" / "Archery.h5"
    with h5py.File(path, "r") as hf:
        data, names = hf["data"][()], list(hf["video_urls"][()])
    with h5py.File(path, "w") as hf:
        hf.create_dataset("data", data=data)
        hf.create_dataset("video_urls", dtype="S80", data=names)
    f = load_published_features(tmp_path, "UCF", "main_split")
    assert f.stages["stage_1_train"].ids[0] == "Archery-s1train-000"
    check_aligned(f, synthetic_index())


def test_clipclap_sequences_are_mean_pooled(tmp_path):
    ds_root = write_synthetic_features(tmp_path, "UCF", "cls_split", "clipclap", dims=DIMS)
    path = (
        ds_root
        / "features"
        / "cls_features_non_averaged"
        / "video"
        / "stage_1_train"
        / "Archery.pkl"
    )
    payload = pickle.loads(path.read_bytes())
    payload["features"] = [np.stack([v, v, v]) for v in payload["features"]]  # [T=3, D]
    path.write_bytes(pickle.dumps(payload))
    f = load_published_features(tmp_path, "UCF")
    check_aligned(f, synthetic_index())
    assert any("mean-pooled" in note for note in f.notes)


def test_numpy1_pickles_load_without_warnings(tmp_path):
    ds_root = write_synthetic_features(tmp_path, "UCF", "cls_split", "clipclap", dims=DIMS)
    text = ds_root / "features" / "cls_features_non_averaged" / "text"
    table = {"Archery": np.arange(5, dtype=np.float32)}
    old_style = pickle.dumps(np.array(table, dtype=object), protocol=2)
    assert b"numpy._core.multiarray" in old_style  # protocol 2 names globals as text
    old_style = old_style.replace(b"numpy._core.", b"numpy.core.")
    path = text / "word_embeddings_ucf_normed.npy"
    header = path.read_bytes()[: path.read_bytes().index(b"\n") + 1]
    path.write_bytes(header + old_style)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"no clip embedding for 7 classes"):
            load_published_features(tmp_path, "UCF")  # read fine, just too few classes


# ---------------------------------------------------------------------------- feature errors


def release_root(tmp_path: Path, release: str = "avca") -> tuple[Path, Path]:
    ds_root = write_synthetic_features(tmp_path, "UCF", "cls_split", release, dims=DIMS)
    folder = "cls_features" if release == "avca" else "cls_features_non_averaged"
    return ds_root, ds_root / "features" / folder


def test_no_release_found(tmp_path):
    with pytest.raises(DataError, match=r"no features folder for UCF .*avgzsl_benchmark_datasets"):
        load_published_features(tmp_path, "UCF")
    with pytest.raises(ConfigError, match="unknown AV-GZSL dataset"):
        load_published_features(tmp_path, "Kinetics")
    release_root(tmp_path)
    with pytest.raises(ConfigError, match="unknown release"):
        load_published_features(tmp_path, "UCF", release="tcaf")
    with pytest.raises(DataError, match="no feature set is here for main_split"):
        load_published_features(tmp_path, "UCF", "main_split")
    with pytest.raises(DataError, match="split files not found"):
        load_published_features(tmp_path, "UCF", "other_split", feature_set="cls_features")


def test_wrong_or_ambiguous_release(tmp_path):
    release_root(tmp_path, "avca")
    release_root(tmp_path, "clipclap")
    with pytest.raises(DataError, match="both releases are here"):
        load_published_features(tmp_path, "UCF")
    with pytest.raises(
        DataError, match=r"holds \.h5 files \(avca's format\) but release='clipclap'"
    ):
        load_published_features(tmp_path, "UCF", release="clipclap", feature_set="cls_features")
    assert load_published_features(tmp_path, "UCF", release="clipclap").release == "clipclap"


@pytest.mark.parametrize("release", ["avca", "clipclap"])
def test_partial_folders(tmp_path, release):
    ds_root, feature_dir = release_root(tmp_path, release)
    ext = ".h5" if release == "avca" else ".pkl"
    shutil.rmtree(feature_dir / "video" / "stage_1_val_unseen")
    with pytest.raises(
        DataError, match=r"video/stage_1_val_unseen: video features of .* not found"
    ):
        load_published_features(tmp_path, "UCF")
    shutil.rmtree(feature_dir / "audio" / "stage_1_val_unseen")
    with pytest.raises(DataError, match="audio features of stage_1_val_unseen not found"):
        load_published_features(tmp_path, "UCF")

    ds_root, feature_dir = release_root(tmp_path / "b", release)
    (feature_dir / "video" / "stage_2_test_seen" / f"Fencing{ext}").unlink()
    with pytest.raises(DataError, match=r"only video: none.*incomplete"):
        load_published_features(ds_root, "UCF")
    (feature_dir / "audio" / "stage_2_test_seen" / f"Fencing{ext}").unlink()
    with pytest.raises(DataError, match=r"no feature file for 1 of the 5 classes .*'Fencing'"):
        load_published_features(ds_root, "UCF")

    ds_root, feature_dir = release_root(tmp_path / "c", release)
    shutil.copy(
        feature_dir / "audio" / "stage_1_train" / f"Archery{ext}",
        feature_dir / "audio" / "stage_1_val_unseen" / f"Archery{ext}",
    )
    shutil.copy(
        feature_dir / "video" / "stage_1_train" / f"Archery{ext}",
        feature_dir / "video" / "stage_1_val_unseen" / f"Archery{ext}",
    )
    with pytest.raises(DataError, match=r"'Archery' is not in UCF/cls_split's stage_1_val_unseen"):
        load_published_features(ds_root, "UCF")


@pytest.mark.parametrize("release", ["avca", "clipclap"])
def test_text_embedding_errors(tmp_path, release):
    ds_root, feature_dir = release_root(tmp_path, release)
    path = feature_dir / "text" / "word_embeddings_ucf_normed.npy"
    table = np.load(path, allow_pickle=True).item()
    table["Skydiving"] = next(iter(table.values()))
    np.save(path, table, allow_pickle=True)
    with pytest.raises(DataError, match=r"1 entries name no class of UCF \('Skydiving'\)"):
        load_published_features(ds_root, "UCF")
    path.unlink()
    with pytest.raises(DataError, match="class embeddings are missing"):
        load_published_features(ds_root, "UCF")
    np.save(path, np.zeros((3, 4)))
    with pytest.raises(DataError, match="holds a plain float64 array"):
        load_published_features(ds_root, "UCF")


def test_avca_file_errors(tmp_path):
    ds_root, feature_dir = release_root(tmp_path)
    audio = feature_dir / "audio" / "stage_1_train" / "Archery.h5"
    video = feature_dir / "video" / "stage_1_train" / "Archery.h5"
    with h5py.File(video, "r") as hf:
        data, names = hf["data"][()], [n.decode() for n in hf["video_urls"][()]]
    with h5py.File(video, "w") as hf:
        hf.create_dataset("data", data=data)
        hf.create_dataset("video_urls", data=[b"other"] + [n.encode() for n in names[1:]])
    with pytest.raises(DataError, match=r"list different clips \(only audio: 'Archery-s1train-00"):
        load_published_features(ds_root, "UCF")
    with h5py.File(audio, "w") as hf:
        hf.create_dataset("data", data=data)
    with pytest.raises(DataError, match=r"Archery\.h5: no video_urls dataset"):
        load_published_features(ds_root, "UCF")
    audio.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"Archery\.h5: not a readable HDF5 file"):
        load_published_features(ds_root, "UCF")


def test_clipclap_file_errors(tmp_path):
    ds_root, feature_dir = release_root(tmp_path, "clipclap")
    path = feature_dir / "audio" / "stage_1_train" / "Archery.pkl"
    payload = pickle.loads(path.read_bytes())
    payload["features"] = payload["features"][1:]  # the packing script's skipped empty feature
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError, match=r"1 feature rows but 2 clip names"):
        load_published_features(ds_root, "UCF")
    path.write_bytes(pickle.dumps({"data": []}))
    with pytest.raises(DataError, match="expected a dict with 'features' and 'video_names'"):
        load_published_features(ds_root, "UCF")


class Exploit:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-harken-test",))


def test_pickles_cannot_run_code(tmp_path):
    ds_root, feature_dir = release_root(tmp_path, "clipclap")
    path = feature_dir / "audio" / "stage_1_train" / "Archery.pkl"
    path.write_bytes(pickle.dumps({"features": [Exploit()], "video_names": [b"x"]}))
    with pytest.raises(DataError, match=r"wants shutil\.rmtree.*refusing"):
        load_published_features(ds_root, "UCF")


def test_features_disagreeing_with_csv(tmp_path):
    ds_root, _ = release_root(tmp_path)
    csv_path = ds_root / "class-split" / "cls_split" / "stage_1_train.csv"
    edit(csv_path, "Archery-s1train-000,Archery,0", "Archery-s1train-000,BabyCrawling,1")
    with pytest.raises(
        DataError, match=r"'Archery-s1train-000' is stored under class 'Archery' but"
    ):
        load_published_features(ds_root, "UCF")


def test_two_files_for_one_class(tmp_path):
    ds_root, feature_dir = release_root(tmp_path)
    for modality in ("audio", "video"):
        folder = feature_dir / modality / "stage_1_train"
        shutil.copy(folder / "Archery.h5", folder / "archery.h5")
    with pytest.raises(DataError, match=r"'Archery' and 'archery' are both class 'Archery'"):
        load_published_features(ds_root, "UCF")
