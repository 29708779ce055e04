"""The EPIC-SOUNDS overlap proxy for sounding actions, on the real validation annotations."""

from __future__ import annotations

import csv

import pytest

from harken.data.readers import read_dataset, sounding_proxy
from harken.data.readers.epic_sounding import covered_seconds
from harken.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def files(request):
    data = request.getfixturevalue("shared_data")
    return (
        data / "epic-kitchens-100" / "EPIC_100_validation.csv",
        data / "epic-sounds" / "EPIC_Sounds_validation.csv",
    )


@pytest.fixture(scope="module")
def proxy(files):
    return sounding_proxy(*files)


def _videos(path) -> set[str]:
    with open(path, newline="") as f:
        return {row["video_id"] for row in csv.DictReader(f)}


def test_only_videos_in_both_files_and_positive_rate(files, proxy):
    both = _videos(files[0]) & _videos(files[1])
    assert len(both) == 137 and len(_videos(files[0])) == 138  # one EPIC video has no sounds
    assert {s.video_id for s in proxy} == both
    assert len(proxy) == 9663  # of 9,668 validation segments
    positives = sum(s.sounding for s in proxy)
    assert positives == 7504 and 0.77 < positives / len(proxy) < 0.78
    assert all(s.sounding == (s.covered >= 0.1) for s in proxy)


def test_hand_checked_segments(proxy):
    by_id = {s.narration_id: s for s in proxy}
    # take plate, 0.00-1.89 s; the first sound of P01_11 starts at 2.069 s
    assert by_id["P01_11_0"].sounding is False and by_id["P01_11_0"].covered == 0
    # put down plate, 1.56-2.45 s; clang 2.069-2.993 s covers 0.381 s
    put_down = by_id["P01_11_1"]
    assert put_down.sounding is True and put_down.covered == pytest.approx(0.381)
    assert (put_down.start, put_down.stop, put_down.narration) == (1.56, 2.45, "put down plate")
    # take pizza, 2.97-13.79 s: clang until 2.993 and rustle from 3.065, counted once each
    assert by_id["P01_11_2"].covered == pytest.approx(0.023 + (13.79 - 3.065))
    # put pizza onto plate, 14.36-15.42 s: the rustle ends at 14.447, 0.087 s in: below 0.1 s
    assert by_id["P01_11_3"].covered == pytest.approx(0.087)
    assert by_id["P01_11_3"].sounding is False


def test_rule_parameters(files):
    looser = {s.narration_id: s.sounding for s in sounding_proxy(*files, min_overlap=0.05)}
    assert looser["P01_11_3"] is True
    stricter = {s.narration_id: s.sounding for s in sounding_proxy(*files, min_fraction=0.5)}
    assert stricter["P01_11_1"] is False  # 0.381 of 0.89 s
    assert stricter["P01_11_2"] is True
    with_background = sounding_proxy(*files, exclude_classes=())
    assert sum(s.sounding for s in with_background) > 7504
    with pytest.raises(ConfigError):
        sounding_proxy(*files, min_overlap=-1)
    with pytest.raises(ConfigError):
        sounding_proxy(*files, min_fraction=1.5)


def test_covered_seconds_merges_overlapping_events():
    events = [(0.0, 1.0), (0.5, 2.0), (3.0, 4.0), (9.0, 10.0)]
    assert covered_seconds(0.5, 3.5, events) == pytest.approx(1.5 + 0.5)
    assert covered_seconds(4.0, 9.0, events) == 0


def test_reader_builds_clips_with_the_proxy(shared_data, files, proxy, tmp_path):
    m = read_dataset("epic100-sounding", data_dir=shared_data)
    assert m.name == "epic100-sounding-validation" and len(m) == len(proxy)
    assert m.sounding() == [s.sounding for s in proxy]
    clip = m.clips[[c.clip_id for c in m].index("P01_11_1")]
    assert clip.labels["action"] == "put plate" and (clip.start, clip.end) == (1.56, 2.45)
    media = tmp_path / "media" / "P01" / "videos"
    media.mkdir(parents=True)
    (media / "P01_11.MP4").symlink_to(shared_data / "ego-mini" / "clips" / "avsync_sample_0.mp4")
    with_media = read_dataset(
        "epic100-sounding", data_dir=shared_data, media_dir=tmp_path / "media", missing="skip"
    )
    assert {c.group for c in with_media} == {"P01_11"}
    assert all(c.audio_path == media / "P01_11.MP4" == c.video_path for c in with_media)
    assert with_media.sounding() == [s.sounding for s in proxy if s.video_id == "P01_11"]
    with pytest.raises(DataError, match="no recording found"):
        read_dataset("epic100-sounding", data_dir=shared_data, media_dir=tmp_path / "media")
    with pytest.raises(ConfigError, match="unknown EPIC-100 split"):
        read_dataset("epic100-sounding:uda_source_train", data_dir=shared_data)
    direct = read_dataset(
        "epic100-sounding",
        data_dir=shared_data / "epic-kitchens-100",
        sounds_dir=shared_data / "epic-sounds",
        min_overlap=0.05,
    )
    assert sum(direct.sounding()) == sum(s.sounding for s in sounding_proxy(*files, 0.05))
