"""Default thresholds, annotations CSVs, and thresholds chosen on annotated recordings."""

from __future__ import annotations

import numpy as np
import pytest

from harken.detection.thresholds import choose_thresholds, default_threshold, read_annotations
from harken.errors import DataError
from harken.metrics.detection import score_table


def test_choose_thresholds_picks_the_f1_maximising_threshold_per_label():
    # "chop": events at 2–5 s (score 0.9) and 10–12 s (0.7), a false alarm at 15–17 s (0.8).
    # Above 0.8 → F1 2/3, in [0.7, 0.8) → 1/2, in [0, 0.7) → both found + 1 false: F1 0.8.
    bounds = np.arange(0.0, 21.0)
    s = np.zeros((20, 3))
    s[2:5, 0], s[10:12, 0], s[15:17, 0] = 0.9, 0.7, 0.8
    s[6:8, 1] = 0.3
    events = {"rec": [(2.0, 5.0, "chop"), (10.0, 12.0, "chop"), (6.0, 8.0, "pour")]}
    labels = ["chop", "pour", "sweep"]
    tables = {"rec": score_table(bounds, s, labels)}
    thresholds, report = choose_thresholds(tables, events, labels, default=0.42)
    assert thresholds["chop"] == pytest.approx(0.35)  # halfway between 0.7 and 0
    assert report["chop"]["F1"] == pytest.approx(0.8)
    assert 0.0 < thresholds["pour"] < 0.3
    assert thresholds["sweep"] == 0.42 and report["sweep"]["chosen_on"].startswith("default")
    # the chosen threshold gives the F1 it reports when used as a fixed threshold
    from harken.metrics.detection import event_f1, restrict_classes

    f1 = event_f1(restrict_classes(tables, ["chop", "pour"]), events, thresholds)
    assert f1["per_class"]["chop"]["F1"] == pytest.approx(0.8)


def _csv(tmp_path, text):
    (tmp_path / "rec.wav").write_bytes(b"RIFF")
    path = tmp_path / "ann.csv"
    path.write_text(text)
    return path


def test_read_annotations_resolves_files_beside_the_csv(tmp_path):
    path = _csv(tmp_path, "file,start,end,label\nrec.wav,1.5,3,chop\nrec.wav,4,5,pour\n")
    got = read_annotations(path, ["chop", "pour"])
    assert got == {str((tmp_path / "rec.wav").resolve()): [(1.5, 3.0, "chop"), (4.0, 5.0, "pour")]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,start,label\nrec.wav,1,chop\n", r"missing \['end'\]"),
        ("file,start,end,label\nother.wav,1,2,chop\n", "row 2: .*other.wav not found"),
        ("file,start,end,label\nrec.wav,3,2,chop\n", "row 2: needs 0 ≤ start < end"),
        ("file,start,end,label\nrec.wav,1,x,chop\n", "row 2: start/end must be seconds"),
        ("file,start,end,label\nrec.wav,1,2,chop\nrec.wav,1,2,fry\n", "row 3: label 'fry'"),
    ],
)
def test_bad_annotations_name_the_row(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_annotations(_csv(tmp_path, text), ["chop", "pour"])


def test_default_thresholds_by_backend_family():
    assert default_threshold("bridge") > 0
    assert default_threshold("clap:laion/clap-htsat-unfused") == 0.5
