"""The manifest: the sounding flag, its fingerprint rule and its CSV column."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import pytest

from harken.data.manifest import Clip, Manifest


def _clips() -> list[Clip]:
    return [
        Clip("a", Path("a.wav"), {"label": "cut"}, start=0.5, end=2.0),
        Clip("b", Path("b.mp4"), {"label": "wash"}, video_path=Path("b.mp4"), narration="wash"),
    ]


def _fingerprint_before_sounding(clips: list[Clip]) -> str:
    """The fingerprint formula of manifests written before clips had a sounding flag."""
    h = hashlib.sha256()
    for c in clips:
        h.update(
            f"{c.clip_id}|{c.audio_path}|{c.start}|{c.end}|{sorted(c.labels.items())}\n".encode()
        )
    return h.hexdigest()[:16]


def test_sounding_defaults_to_unknown_and_is_listed_in_order():
    clips = _clips()
    assert all(c.sounding is None for c in clips)
    flagged = [dataclasses.replace(clips[0], sounding=True), clips[1]]
    assert Manifest("m", flagged).sounding() == [True, None]
    with pytest.raises(dataclasses.FrozenInstanceError):
        clips[0].sounding = True  # type: ignore[misc]


def test_fingerprint_unchanged_without_flags_and_sensitive_to_them():
    clips = _clips()
    assert Manifest("m", clips).fingerprint() == _fingerprint_before_sounding(clips)
    yes = [dataclasses.replace(c, sounding=True) for c in clips]
    no = [dataclasses.replace(c, sounding=False) for c in clips]
    prints = {Manifest("m", x).fingerprint() for x in (clips, yes, no)}
    assert len(prints) == 3


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_to_csv_writes_a_sounding_column_only_when_a_clip_has_a_flag(tmp_path):
    clips = _clips()
    Manifest("m", clips).to_csv(tmp_path / "plain.csv")
    assert "sounding" not in _read(tmp_path / "plain.csv")[0]
    flagged = [dataclasses.replace(clips[0], sounding=False), clips[1]]
    Manifest("m", flagged).to_csv(tmp_path / "flagged.csv")
    rows = _read(tmp_path / "flagged.csv")
    assert [r["sounding"] for r in rows] == ["false", ""]
    assert [r["label"] for r in rows] == ["cut", "wash"]
