"""Benchmark soundscapes from real clips: known spans, real gaps, one clip per class."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import load_audio
from harken.detection import bench
from harken.detection.soundscapes import GAP_SECONDS, build, trim_silence


def test_trim_silence_drops_quiet_leading_and_trailing_frames():
    rate = 1000  # 50-sample frames
    wave = np.concatenate([np.full(100, 1e-3), np.full(800, 0.5), np.full(150, 1e-3)])
    got = trim_silence(wave, rate)
    assert len(got) == 800 and np.all(got == 0.5)  # 1e-3 is 54 dB below 0.5: trimmed


@pytest.fixture(scope="module")
def clips(shared_data):
    with open(shared_data / "kitchen20" / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    picked = {}
    for r in rows:
        picked.setdefault(r["label"], []).append(str(shared_data / "kitchen20" / r["path"]))
    return [(p, c) for c, ps in sorted(picked.items())[:6] for p in ps[:2]]


def test_soundscapes_hold_each_class_once_at_its_annotated_span(clips, tmp_path):
    scapes = build(clips, 3, 0, tmp_path, "dev-s3")
    events = [e for s in scapes for e in s.events]
    assert sorted(e[2] for e in events) == sorted({c for _, c in clips})  # each class once
    for s in scapes:
        wave, rate = sf.read(s.path, dtype="float32")
        assert rate == 16000 and len(wave) / rate == pytest.approx(s.duration, abs=1e-3)
        assert 60.0 <= s.duration <= 120.0
        previous_end = 0.0
        for (onset, offset, label), source in zip(s.events, s.sources, strict=True):
            assert dict(clips)[source] == label
            gap = onset - previous_end
            assert GAP_SECONDS[0] - 1e-3 <= gap <= GAP_SECONDS[1] + 1e-3
            # the annotated span holds the trimmed clip, the gap only the quiet floor
            clip = trim_silence(load_audio(source, 16000)[0])
            part = wave[round(onset * rate) : round(offset * rate)]
            assert len(part) == len(clip)
            assert np.abs(part - clip).max() < 0.01  # + noise floor at −60 dBFS, FLAC 16-bit
            quiet = wave[round(previous_end * rate) + 10 : round(onset * rate) - 10]
            assert np.sqrt(np.mean(quiet**2)) < 0.01
            previous_end = offset


def test_same_seed_same_soundscapes_other_seed_other_order(clips, tmp_path):
    a = build(clips, 0, 0, tmp_path / "a", "x")
    b = build(clips, 0, 0, tmp_path / "b", "x")
    c = build(clips, 1, 0, tmp_path / "c", "x")
    assert [s.events for s in a] == [s.events for s in b]
    assert sf.read(a[0].path)[0].tobytes() == sf.read(b[0].path)[0].tobytes()
    assert [s.events for s in a] != [s.events for s in c]


def test_the_baseline_picks_one_label_per_window():
    from harken.detection.scoring import WindowScores

    got = WindowScores(np.array([0.0, 5.0, 10.0]), np.array([[0.1, 0.3], [0.0, 0.0]]), 10.0)
    (t,) = bench.baseline_timelines({"rec": got})
    # every window emits exactly one label above NOT_PICKED / 2, gaps included
    assert t.smoothed.tolist() == [[bench.NOT_PICKED, 0.3], [0.0, bench.NOT_PICKED]]


def test_bench_refuses_a_dataset_without_test_folds(tmp_path, shared_data):
    from harken import api
    from harken.errors import DataError

    k20 = tmp_path / "kitchen20"
    k20.mkdir()
    (k20 / "labels.csv").write_text("path,label,fold,source_id,take\na.flac,blender,1,1,A\n")
    with pytest.raises(DataError, match=r"no clips in folds \[5, 6, 7, 8, 9\]"):
        api.bench_detect([0], tmp_path / "out", data_dir=str(tmp_path))
