"""The generic CSV reader: layout rule, relative paths, every malformed-row error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken.data.readers import read_csv_manifest, read_dataset
from harken.errors import ConfigError, DataError


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.full(1600, 0.1, np.float32), 16000)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _wav(tmp_path / "audio" / "a.wav")
    _wav(tmp_path / "audio" / "b.wav")
    return tmp_path


def _csv(folder: Path, text: str, name: str = "clips.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_relative_paths_extra_label_columns_and_spans(folder):
    csv_path = _csv(
        folder,
        "path,label,fold,verb,noun,start,end,group,narration\n"
        "audio/a.wav,cut,1,cut,onion,0.5,1.5,g1,cut the onion\n"
        "audio/b.wav,wash,2,wash,plate,,,g2,\n",
    )
    m = read_dataset(csv_path)
    assert m.name == "clips" and len(m) == 2 and m.root == folder
    a, b = m.clips
    assert a.audio_path == folder / "audio" / "a.wav"
    assert a.labels == {"label": "cut", "verb": "cut", "noun": "onion"}
    assert (a.start, a.end, a.fold, a.group, a.narration) == (0.5, 1.5, "1", "g1", "cut the onion")
    assert a.clip_id == "audio/a.wav@0.5-1.5"
    assert b.clip_id == "audio/b.wav" and b.start is None and b.narration is None
    assert m.targets == ["label", "verb", "noun"]


def test_id_column_absolute_path_and_video(folder, tmp_path):
    absolute = _wav(tmp_path / "elsewhere" / "c.wav")
    csv_path = _csv(folder, f"id,path,label,video\nx1,{absolute},door,v/x1.mp4\n")
    (clip,) = read_csv_manifest(csv_path).clips
    assert clip.clip_id == "x1" and clip.audio_path == absolute
    assert clip.video_path == folder / "v" / "x1.mp4"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (",door,,", "path is missing"),
        ("audio/a.wav,,,", "empty label"),
        ("audio/a.wav,door,soon,", "not a number"),
        ("audio/a.wav,door,2.0,1.0", "not after start"),
        ("audio/a.wav,door,2.0,2.0", "not after start"),
        ("audio/a.wav,door,-1,", "≥ 0"),
    ],
)
def test_malformed_rows_name_file_and_line(folder, row, problem):
    csv_path = _csv(folder, f"path,label,start,end\naudio/b.wav,door,,\n\n{row}\n")
    with pytest.raises(DataError) as err:
        read_csv_manifest(csv_path)
    message = str(err.value)
    assert "clips.csv" in message and "line 4" in message and problem in message


def test_duplicate_id_names_both_lines(folder):
    csv_path = _csv(folder, "path,label\naudio/a.wav,x\naudio/b.wav,y\naudio/a.wav,z\n")
    with pytest.raises(DataError, match=r"clips\.csv, line 4: duplicate clip id .*line 2"):
        read_csv_manifest(csv_path)


def test_header_problems(folder):
    with pytest.raises(DataError, match="no 'path' column"):
        read_csv_manifest(_csv(folder, "file,label\na.wav,x\n"))
    with pytest.raises(DataError, match="no label column"):
        read_csv_manifest(_csv(folder, "path,fold\naudio/a.wav,1\n"))
    with pytest.raises(DataError, match="line 2: 3 fields"):
        read_csv_manifest(_csv(folder, "path,label\naudio/a.wav,x,extra\n"))


def test_missing_files_are_all_listed_in_one_error(folder):
    rows = "".join(f"audio/missing{i}.wav,x\n" for i in range(8))
    csv_path = _csv(folder, "path,label\naudio/a.wav,x\n" + rows)
    with pytest.raises(DataError) as err:
        read_csv_manifest(csv_path)
    message = str(err.value)
    assert "8 of 9 audio file(s) not found" in message
    assert "missing0.wav" in message and "and 3 more" in message
    assert len(read_csv_manifest(csv_path, check_files=False)) == 9


def test_unknown_spec_and_missing_csv(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        read_dataset("no-such-dataset")
    with pytest.raises(ConfigError, match="not found"):
        read_dataset(tmp_path / "absent.csv")


# --- text and path safety --------------------------------------------------------------------


def test_a_non_utf8_csv_names_the_line_and_byte(folder):
    path = folder / "latin.csv"
    path.write_bytes(b"path,label\naudio/a.wav,cut\naudio/b.wav,caf\xe9\n")
    with pytest.raises(DataError) as err:
        read_csv_manifest(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line 3: not UTF-8 text (byte 42")
    assert "save the CSV as UTF-8" in message


def test_a_bom_and_blank_rows_are_ignored(folder):
    path = folder / "bom.csv"
    path.write_bytes(
        b"\xef\xbb\xbfpath,label\r\naudio/a.wav,cut\r\n\r\n , \r\naudio/b.wav,wash\r\n"
    )
    manifest = read_csv_manifest(path)
    assert [c.labels["label"] for c in manifest] == ["cut", "wash"]


def test_a_folder_instead_of_a_csv_is_a_clear_error(folder):
    (folder / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a folder; give the CSV file inside it"):
        read_csv_manifest(folder / "dir.csv")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("audio/b.wav", r"line 3: 1 fields but the header has 2 \(path,label\); add the missing"),
        ("audio/b.wav,wash,extra", r"line 3: 3 fields but the header has 2 .*quote values"),
    ],
)
def test_rows_with_the_wrong_number_of_fields_name_the_line(folder, row, expected):
    path = _csv(folder, f"path,label\naudio/a.wav,cut\n{row}\n")
    with pytest.raises(DataError, match=expected):
        read_csv_manifest(path)


def test_missing_columns_list_the_header_found(folder):
    path = _csv(folder, "file,label\naudio/a.wav,cut\n")
    with pytest.raises(DataError, match=r"no 'path' column; the header is file,label"):
        read_csv_manifest(path)


@pytest.mark.parametrize("rel", ["../../etc/passwd", "audio/../../outside.wav", ".."])
def test_relative_paths_may_not_leave_the_csv_folder(folder, rel):
    path = _csv(folder, f"path,label\naudio/a.wav,cut\n{rel},wash\n")
    with pytest.raises(DataError, match=r"line 3: path .* points outside .*move the CSV"):
        read_csv_manifest(path, check_files=False)


def test_video_paths_may_not_leave_the_csv_folder(folder):
    path = _csv(folder, "path,label,video\naudio/a.wav,cut,../v.mp4\n")
    with pytest.raises(DataError, match=r"line 2: video '../v.mp4' points outside"):
        read_csv_manifest(path, check_files=False)


def test_absolute_paths_and_inner_dot_dots_are_allowed(folder, tmp_path_factory):
    elsewhere = _wav(tmp_path_factory.mktemp("elsewhere") / "c.wav")
    path = _csv(folder, f"path,label\naudio/x/../a.wav,cut\n{elsewhere},wash\n")
    manifest = read_csv_manifest(path)
    assert [c.audio_path for c in manifest] == [folder / "audio" / "a.wav", elsewhere]


def test_a_class_with_a_single_clip_is_warned_about(folder):
    path = _csv(folder, "path,label,id\naudio/a.wav,cut,1\naudio/b.wav,cut,2\naudio/a.wav,wash,3\n")
    with pytest.warns(UserWarning, match=r"1 class\(es\) of column 'label' have a single clip"):
        read_csv_manifest(path)


# --- tri-modal columns: video without path, narration without labels, sounding ------------------


def _touch(path: Path) -> Path:
    """A placeholder media file: the reader checks that files exist, it does not decode them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded")
    return path


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("yes", True), ("No", False), ("TRUE", True), ("false", False), ("1", True), ("0", False)],
)
def test_sounding_values(folder, cell, expected):
    csv_path = _csv(folder, f"path,label,sounding\naudio/a.wav,cut,{cell}\naudio/b.wav,cut,\n")
    m = read_csv_manifest(csv_path)
    assert m.sounding() == [expected, None]


@pytest.mark.parametrize("cell", ["maybe", "2", "y"])
def test_bad_sounding_value_names_file_line_and_value(folder, cell):
    csv_path = _csv(folder, f"path,label,sounding\naudio/a.wav,cut,yes\naudio/b.wav,cut,{cell}\n")
    with pytest.raises(DataError) as err:
        read_csv_manifest(csv_path)
    message = str(err.value)
    assert "clips.csv, line 3" in message and repr(cell) in message


def test_video_without_path_reads_audio_from_the_video_and_narration_needs_no_label(folder):
    _touch(folder / "v" / "x.mp4")
    csv_path = _csv(
        folder,
        "video,narration,sounding\nv/x.mp4,C opens the tap,yes\nv/x.mp4,C holds a cup,no\n",
    )
    with pytest.raises(DataError, match=r"duplicate clip id 'v/x\.mp4'"):
        read_csv_manifest(csv_path)
    csv_path = _csv(
        folder,
        "id,video,narration,sounding,start,end\n"
        "t1,v/x.mp4,C opens the tap,yes,0,1.5\nt2,v/x.mp4,C holds a cup,no,,\n",
    )
    m = read_csv_manifest(csv_path)
    first, second = m.clips
    assert first.audio_path == first.video_path == folder / "v" / "x.mp4"
    assert first.labels == {} and m.targets == []
    assert (first.narration, first.sounding, first.start, first.end) == (
        "C opens the tap",
        True,
        0.0,
        1.5,
    )
    assert second.sounding is False and second.clip_id == "t2"


def test_video_only_csv_default_ids_and_missing_video(folder):
    _touch(folder / "v" / "x.mp4")
    m = read_csv_manifest(_csv(folder, "video,narration\nv/x.mp4,cut\n"))
    assert m.clips[0].clip_id == "v/x.mp4" and m.clips[0].sounding is None
    with pytest.raises(DataError, match="line 3: the video is missing"):
        read_csv_manifest(_csv(folder, "video,narration\nv/x.mp4,cut\n,wash\n"))
    with pytest.raises(DataError, match="1 of 2 audio file"):
        read_csv_manifest(_csv(folder, "video,narration\nv/x.mp4,cut\nv/gone.mp4,wash\n"))


def test_path_still_wins_over_video_and_labels_stay_required_without_narration(folder):
    csv_path = _csv(folder, "path,video,label\naudio/a.wav,v/x.mp4,cut\n,audio/b.wav,wash\n")
    a, b = read_csv_manifest(csv_path).clips
    assert a.audio_path == folder / "audio" / "a.wav" and a.video_path == folder / "v" / "x.mp4"
    assert b.audio_path == b.video_path == folder / "audio" / "b.wav"
    with pytest.raises(DataError, match="no label column"):
        read_csv_manifest(_csv(folder, "video,sounding\naudio/a.wav,yes\n"))
