"""A tri-modal CSV over av-mini's real clips: video (audio read from it), narration, sounding."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

#: A small, fast MC3 setting for tests (YAMNet audio, one frame per clip).
FAST = {"audio": "yamnet", "video": "efficientnet-lite0", "epochs": 3, "lr": 1e-3}


@pytest.fixture(scope="session")
def avmini_trimodal(shared_data, tmp_path_factory) -> Path:
    """24 av-mini clips as a CSV: ``video``, ``narration`` = the label, ``sounding`` = yes for
    clips whose VGGSounder tags have no audible-only / visible-only tag, else no; one row with an
    empty ``sounding`` (unknown)."""
    rows = list(
        csv.DictReader(
            Path(shared_data / "av-mini" / "labels.csv").read_text(encoding="utf-8").splitlines()
        )
    )
    out = tmp_path_factory.mktemp("trimodal") / "clips.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video", "narration", "sounding", "label"])
        for i, r in enumerate(rows[:24]):
            tags = r["extra"]
            sounding = "no" if ("[A]" in tags or "[V]" in tags or i % 3 == 0) else "yes"
            if i == 5:
                sounding = ""
            w.writerow([shared_data / "av-mini" / r["path"], r["label"], sounding, r["label"]])
    return out
