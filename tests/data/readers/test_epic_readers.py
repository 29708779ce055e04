"""EPIC-KITCHENS-100/-55 readers on the real annotation CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harken.data.readers import read_dataset
from harken.data.readers.epic import parse_timestamp, read_class_table
from harken.errors import DataError


def test_epic100_validation(shared_data):
    m = read_dataset("epic100", data_dir=shared_data)
    assert m.name == "epic100-validation" and len(m) == 9668
    assert len(m.classes("verb")) == 78 and len(m.classes("noun")) == 211
    assert len(m.classes("action")) == 1352
    first = m.clips[0]
    assert first.clip_id == "P01_11_0" and first.narration == "take plate"
    assert first.labels == {"verb": "take", "noun": "plate", "action": "take plate"}
    assert (first.start, first.end, first.group) == (0.0, 1.89, "P01_11")
    assert first.audio_path == Path("P01/videos/P01_11.MP4")


def test_epic100_split_by_spec(shared_data):
    m = read_dataset("epic100:uda_source_train", data_dir=shared_data / "epic-kitchens-100")
    assert m.name == "epic100-uda_source_train" and len(m) == 16115
    # "open door": raw noun "door" belongs to noun class 3, key "cupboard"
    assert m.clips[0].narration == "open door"
    assert m.clips[0].labels["action"] == "open cupboard"


def test_epic55(shared_data):
    m = read_dataset("epic55", data_dir=shared_data)
    assert len(m) == 28472 and m.clips[0].clip_id == "0"
    assert len(m.classes("verb")) == 119 and len(m.classes("noun")) == 321
    assert len(m.classes("action")) == 2513


def test_action_is_verb_plus_first_noun_from_class_tables(shared_data):
    folder = shared_data / "epic-kitchens-100"
    verbs = read_class_table(folder / "EPIC_100_verb_classes.csv")
    nouns = read_class_table(folder / "EPIC_100_noun_classes.csv")
    assert len(verbs) == 97 and len(nouns) == 300
    m = read_dataset("epic100", data_dir=shared_data)
    with open(folder / "EPIC_100_validation.csv") as f:
        rows = list(csv.DictReader(f))
    multi = [i for i, r in enumerate(rows) if len(eval(r["all_noun_classes"])) > 1]
    assert multi, "the validation split has narrations with several nouns"
    for i in [*multi[:50], 0, len(rows) - 1]:
        row, clip = rows[i], m.clips[i]
        first_noun = str(eval(row["all_noun_classes"])[0])
        assert clip.labels["noun"] == nouns[first_noun]
        assert clip.labels["action"] == f"{verbs[row['verb_class']]} {nouns[first_noun]}"


def test_epic55_class_tables_use_class_key(shared_data):
    nouns = read_class_table(shared_data / "epic-kitchens-55" / "EPIC_noun_classes.csv")
    assert len(nouns) == 352 and nouns["1"] == "pan"


def test_parse_timestamp():
    assert parse_timestamp("00:00:01.89") == pytest.approx(1.89)
    assert parse_timestamp("01:02:03.5") == pytest.approx(3723.5)
    for bad in ["1.5", "00:61:00.00", "aa:bb:cc", ""]:
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def _copy_with_edit(shared_data: Path, tmp_path: Path, line: int, column: str, value: str):
    src = shared_data / "epic-kitchens-100"
    for name in ["EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv"]:
        (tmp_path / name).write_bytes((src / name).read_bytes())
    with open(src / "EPIC_100_validation.csv") as f:
        rows = list(csv.DictReader(f))[:20]
    rows[line - 2][column] = value
    with open(tmp_path / "EPIC_100_validation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("start_timestamp", "0:0:xx", "bad timestamp"),
        ("stop_timestamp", "00:00:00.00", "not after start"),
        ("verb_class", "999", "not in the class tables"),
    ],
)
def test_bad_rows_name_file_and_line(shared_data, tmp_path, column, value, problem):
    _copy_with_edit(shared_data, tmp_path, 7, column, value)
    with pytest.raises(DataError, match=rf"EPIC_100_validation\.csv, line 7: .*{problem}"):
        read_dataset("epic100", data_dir=tmp_path)


def test_media_lookup_and_missing_recordings(shared_data, tmp_path, tones_mp4):
    media = tmp_path / "media"
    (media / "P01" / "videos").mkdir(parents=True)
    video = media / "P01" / "videos" / "P01_11.MP4"
    video.write_bytes(tones_mp4[0].read_bytes())
    with pytest.raises(DataError, match=r"no recording found .* video\(s\).*missing='skip'"):
        read_dataset("epic100", data_dir=shared_data, media_dir=media)
    m = read_dataset("epic100", data_dir=shared_data, media_dir=media, missing="skip")
    assert len(m) > 0 and {c.group for c in m} == {"P01_11"}
    assert all(c.audio_path == video and c.video_path == video for c in m)
    (media / "P01_11.flac").write_bytes(b"")  # an audio-only file is preferred to the video
    m = read_dataset("epic100", data_dir=shared_data, media_dir=media, missing="skip")
    assert m.clips[0].audio_path == media / "P01_11.flac" and m.clips[0].video_path == video


def test_annotations_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv("HARKEN_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="EPIC-KITCHENS-100 annotations not found"):
        read_dataset("epic100", data_dir=tmp_path)
