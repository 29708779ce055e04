"""av-mini: 36 real clips, and their (clip, VGGSounder tag) sounding pairs."""

from __future__ import annotations

from collections import Counter

import pytest

from harken.data.readers import read_dataset
from harken.data.readers.avmini import parse_vggsounder_tags
from harken.errors import ConfigError, DataError

# Counted by hand from shared/data/av-mini/labels.csv: 36 rows, 16 with VGGSounder tags holding
# 37 [AV], 10 [A] and 1 [V] tags (48), 20 rows without tags.
CLIPS, TAGGED_ROWS, AV, A, V = 36, 68 - 20, 37, 10, 1
UNTAGGED = CLIPS - 16


@pytest.fixture(scope="module")
def data_dir(request):
    return request.getfixturevalue("shared_data")


def test_avmini_is_36_video_clips_labelled_by_their_class(data_dir):
    m = read_dataset("avmini", data_dir=data_dir)
    assert m.name == "avmini" and len(m) == CLIPS
    assert all(c.audio_path == c.video_path and c.audio_path.is_file() for c in m)
    assert all(c.narration == c.label("label") and c.sounding is None for c in m)
    labels = m.labels("label")
    assert "donkey, ass braying" in labels  # a quoted label with a comma stays whole
    assert Counter(labels)["dog"] == 2
    assert read_dataset("avmini", data_dir=data_dir / "av-mini").clips == m.clips


def test_sounding_pairs_counts_and_hand_checked_rows(data_dir):
    m = read_dataset("avmini:sounding", data_dir=data_dir)
    assert m.name == "avmini-sounding"
    assert len(m) == TAGGED_ROWS + UNTAGGED
    assert Counter(m.sounding()) == {True: AV + UNTAGGED, False: A + V}
    by_id = {c.clip_id: c for c in m}
    canary = "clips/SpecVQGAN__0nib7bMm8BA_15000_25000.mp4"
    assert [
        (by_id[f"{canary}#{k}"].narration, by_id[f"{canary}#{k}"].sounding) for k in (0, 1)
    ] == [
        ("canary calling", True),
        ("bird chirping, tweeting", True),
    ]
    assert f"{canary}#2" not in by_id
    dog = "clips/SparseSync__3qesirWAGt4_20000_30000.mp4"
    assert (by_id[f"{dog}#3"].narration, by_id[f"{dog}#3"].sounding) == (
        "male speech, man speaking",
        False,
    )
    harp = "clips/SpecVQGAN__6zlMP_kQ_-w_30000_40000.mp4"
    assert (by_id[f"{harp}#0"].narration, by_id[f"{harp}#0"].sounding) == ("orchestra", False)
    assert by_id[f"{harp}#0"].label("label") == "playing harp"
    untagged = by_id["clips/CondFoleyGen__chopping.mp4#0"]
    assert (untagged.narration, untagged.sounding) == ("chopping vegetables with a knife", True)
    assert all(c.group and c.clip_id.startswith(c.group + "#") for c in m)


def test_tag_parser_and_errors(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HARKEN_DATA_DIR", raising=False)
    assert parse_vggsounder_tags("", "x") == []
    assert parse_vggsounder_tags("VGGSounder: a, b[A]; c[V]", "x") == [("a, b", "A"), ("c", "V")]
    with pytest.raises(DataError, match=r"here: VGGSounder tag 'c' has no"):
        parse_vggsounder_tags("VGGSounder: a[AV]; c", "here")
    with pytest.raises(DataError, match="does not start with"):
        parse_vggsounder_tags("AudioSet: a[AV]", "here")
    with pytest.raises(ConfigError, match="unknown av-mini view"):
        read_dataset("avmini:visible", data_dir=data_dir)
    with pytest.raises(DataError, match="av-mini not found"):
        read_dataset("avmini", data_dir=tmp_path)
