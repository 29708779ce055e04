"""Ego4D narration.json → 1.5 s tri-modal clips, on the real ego-mini videos."""

from __future__ import annotations

import json
import warnings

import pytest

from harken.data.readers import read_dataset
from harken.data.readers.ego4d import clean_narration, read_ego4d_narrations
from harken.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def media(request):
    return request.getfixturevalue("shared_data") / "ego-mini" / "clips"


def _narration(t: float, text: str, uid: str = "x") -> dict:
    return {
        "timestamp_sec": t,
        "timestamp_frame": round(t * 30),
        "narration_text": text,
        "annotation_uid": f"{uid}-{t}",
    }


def _write(tmp_path, data) -> object:
    path = tmp_path / "narration.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def narrations(tmp_path):
    return _write(
        tmp_path,
        {
            "avsync_sample_0": {
                "narration_pass_1": {
                    "narrations": [
                        _narration(0.2, "#C C opens the tap"),
                        _narration(3.25, "#O man X hands C a cup #unsure"),
                        _narration(3.2504, "#C C duplicate at the same millisecond"),
                    ]
                },
                "narration_pass_2": {"narrations": [_narration(5.0, "#C C closes the tap")]},
            },
            "egosonics_gt8": {"narration_pass_1": {"narrations": [_narration(4.0, "#C C cuts")]}},
        },
    )


def test_spans_ids_text_and_paths(narrations, media):
    m = read_ego4d_narrations(narrations, media_dir=media)
    assert [c.clip_id for c in m] == [
        "avsync_sample_0@0.200",
        "avsync_sample_0@3.250",
        "egosonics_gt8@4.000",
    ]
    first, second, third = m.clips
    assert (first.start, first.end) == (0.0, pytest.approx(1.2))  # clipped at 0
    assert (second.start, second.end) == (pytest.approx(2.75), pytest.approx(4.25))
    assert (third.start, third.end) == (pytest.approx(3.5), pytest.approx(5.0))
    assert first.audio_path == first.video_path == media / "avsync_sample_0.mp4"
    assert third.video_path == media / "egosonics_gt8.mp4" and third.group == "egosonics_gt8"
    assert (first.narration, second.narration) == ("C opens the tap", "man X hands C a cup")
    assert first.labels == {} and first.sounding is None
    assert m.name == "ego4d"


def test_passes_options_and_text_modes(narrations, media):
    both = read_dataset("ego4d:all", narrations=narrations, media_dir=media)
    assert "avsync_sample_0@5.000" in {c.clip_id for c in both} and len(both) == 4
    only2 = read_ego4d_narrations(narrations, media_dir=media, passes=("narration_pass_2",))
    assert [c.clip_id for c in only2] == ["avsync_sample_0@5.000"]
    wide = read_ego4d_narrations(narrations, media_dir=media, before=2.0, after=0.5, text="action")
    assert (wide.clips[2].start, wide.clips[2].end) == (pytest.approx(2.0), pytest.approx(4.5))
    assert wide.clips[0].narration == "opens the tap"
    wearer = read_ego4d_narrations(narrations, media_dir=media, wearer_only=True, text="raw")
    assert [c.narration for c in wearer] == [  # without the #O line, the duplicate is first
        "#C C opens the tap",
        "#C C duplicate at the same millisecond",
        "#C C cuts",
    ]
    assert clean_narration("#C C picks #unsure  the   cup", "action") == "picks the cup"
    with pytest.raises(ConfigError):
        read_ego4d_narrations(narrations, media_dir=media, before=-1)
    with pytest.raises(ConfigError):
        read_ego4d_narrations(narrations, media_dir=media, text="tidy")


def test_videos_in_subfolders_and_annotations_only(tmp_path, narrations, media):
    sub = tmp_path / "media" / "part1"
    sub.mkdir(parents=True)
    (sub / "egosonics_gt8.mp4").symlink_to(media / "egosonics_gt8.mp4")
    (tmp_path / "media" / "avsync_sample_0.mp4").symlink_to(media / "avsync_sample_0.mp4")
    m = read_ego4d_narrations(narrations, media_dir=tmp_path / "media")
    assert m.clips[-1].video_path == sub / "egosonics_gt8.mp4"
    assert m.clips[0].video_path == tmp_path / "media" / "avsync_sample_0.mp4"
    bare = read_ego4d_narrations(narrations)
    assert [str(c.audio_path) for c in bare][-1] == "egosonics_gt8.mp4"


def test_missing_videos_are_skipped_with_one_warning(tmp_path, media):
    items = {"narrations": [_narration(1.0, "#C C a"), _narration(2.0, "#C C b")]}
    path = _write(
        tmp_path,
        {
            "avsync_sample_1": {"narration_pass_1": items},
            "no_such_video": {"narration_pass_1": items},
            "gone_too": {"narration_pass_1": items},
        },
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_ego4d_narrations(path, media_dir=media)
    assert [c.clip_id for c in m] == ["avsync_sample_1@1.000", "avsync_sample_1@2.000"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 video(s)" in message and "4 narrations skipped" in message
    only_missing = _write(tmp_path, {"no_such_video": {"narration_pass_1": items}})
    with pytest.raises(DataError, match="no video under"):
        read_ego4d_narrations(only_missing, media_dir=media)


def test_malformed_files_name_the_file(tmp_path, media, monkeypatch):
    monkeypatch.delenv("HARKEN_DATA_DIR", raising=False)
    path = tmp_path / "narration.json"
    path.write_text('{"avsync_sample_0": {"narration_pass_1": ')
    with pytest.raises(DataError, match=r"narration\.json: not valid JSON"):
        read_ego4d_narrations(path, media_dir=media)
    _write(tmp_path, [1, 2])
    with pytest.raises(DataError, match=r"narration\.json: expected an object"):
        read_ego4d_narrations(path)
    _write(tmp_path, {"v": {"narration_pass_1": {"narrations": [{"narration_text": "#C C a"}]}}})
    with pytest.raises(
        DataError, match=r"narration\.json: video 'v', narration_pass_1 narration 0"
    ):
        read_ego4d_narrations(path)
    with pytest.raises(DataError, match=r"narration\.json not found"):
        read_dataset("ego4d", data_dir=tmp_path / "nowhere")


def test_sounding_labels_join_on_video_and_timestamp(tmp_path, narrations, media):
    labels = tmp_path / "sounding.csv"
    labels.write_text(
        "video_uid,timestamp_sec,sounding\n"
        "avsync_sample_0,0.2004,yes\n"  # within 1 ms of 0.2
        "avsync_sample_0,3.252,no\n"  # 2 ms from 3.25: no match
        "egosonics_gt8,4.0,no\n"
    )
    m = read_ego4d_narrations(narrations, media_dir=media, sounding_csv=labels)
    assert m.sounding() == [True, None, False]
    kept = read_dataset(
        "ego4d", narrations=narrations, media_dir=media, sounding_csv=labels, labelled_only=True
    )
    assert [c.clip_id for c in kept] == ["avsync_sample_0@0.200", "egosonics_gt8@4.000"]
    labels.write_text("video_uid,timestamp_sec,sounding\navsync_sample_0,0.2,perhaps\n")
    with pytest.raises(DataError, match=r"sounding\.csv, line 2: sounding 'perhaps'"):
        read_ego4d_narrations(narrations, media_dir=media, sounding_csv=labels)
