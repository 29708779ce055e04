"""The Kitchen20 reader on the real data (harken layout) and on the upstream layout."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from harken.data.audio import load_audio
from harken.data.readers import read_dataset, read_kitchen20
from harken.errors import DataError


def test_real_kitchen20(shared_data):
    m = read_dataset("kitchen20", data_dir=shared_data)
    assert m.name == "kitchen20" and len(m) == 1070
    classes = m.classes("label")
    assert len(classes) == 20 and {"blender", "sweep", "stove-fan"} <= set(classes)
    per_class = Counter(m.labels("label"))
    assert min(per_class.values()) >= 42 and max(per_class.values()) <= 69
    assert sorted({c.fold for c in m}, key=int) == [str(f) for f in range(1, 10)]
    first = m.clips[0]
    assert first.clip_id == "audio/blender/0-158737-A-0" and first.group == "158737"
    assert first.labels == {"label": "blender"}
    # takes of one Freesound source share a group, and groups never span classes... mostly
    groups = Counter(c.group for c in m)
    assert len(groups) < len(m) and groups["158737"] == 3
    wave, sr = load_audio(first.audio_path)
    assert sr == 16000 and abs(len(wave) / sr - 5.0) < 0.1


def test_kitchen20_folder_itself_and_env(shared_data, monkeypatch):
    assert len(read_kitchen20(shared_data / "kitchen20", check_files=False)) == 1070
    monkeypatch.setenv("HARKEN_DATA_DIR", str(shared_data))
    assert len(read_kitchen20(check_files=False, download=False)) == 1070


def test_upstream_layout_is_read_with_same_ids(shared_data, tmp_path):
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))[:3]
    with open(tmp_path / "kitchen20.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "category", "fold", "orig_idx", "path", "take", "target", "usr_id"])
        for i, r in enumerate(rows):
            name = Path(r["path"]).with_suffix(".wav").name
            w.writerow(
                [
                    i,
                    r["label"],
                    int(r["fold"]) - 1,
                    i,
                    f"audio/{name}",
                    r["take"],
                    0,
                    r["source_id"],
                ]
            )
    m = read_kitchen20(tmp_path, check_files=False, download=False)
    ours = read_kitchen20(shared_data, check_files=False).clips[:3]
    assert [c.clip_id for c in m] == [c.clip_id for c in ours]
    assert [c.fold for c in m] == [c.fold for c in ours]
    assert [c.group for c in m] == [c.group for c in ours]
    with pytest.raises(DataError, match="audio file"):
        read_kitchen20(tmp_path, download=False)


def test_not_found_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("HARKEN_DATA_DIR", raising=False)
    monkeypatch.setenv("HARKEN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="Kitchen20 not found"):
        read_kitchen20(tmp_path, download=False)
