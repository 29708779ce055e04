"""``descriptions:<file>``: class knowledge read from CSV/JSON files and the shipped sets."""

from __future__ import annotations

import csv
import json

import pytest

from harken.errors import ConfigError, DataError
from harken.knowledge.base import get_generator


def test_shipped_kitchen20_set_covers_every_class(shared_data):
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        classes = sorted({r["label"] for r in csv.DictReader(f)})
    gen = get_generator("descriptions:kitchen20")
    out = gen.describe(classes)
    assert len(classes) == 20 and all(len(texts) == 2 for texts in out)
    assert all(t.endswith(".") and len(t.split()) >= 5 for texts in out for t in texts)
    assert (
        gen.config()["file"] == "kitchen20-descriptions.csv" and len(gen.config()["sha256"]) == 64
    )


def test_names_match_up_to_case_hyphens_and_spaces(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"frying-pan": ["oil sizzling in a pan."], "sweep": ["a broom."]}))
    gen = get_generator(f"descriptions:{path}")
    assert gen.describe(["Frying pan", "sweep"]) == [["oil sizzling in a pan."], ["a broom."]]


def test_missing_class_names_the_file_and_the_class(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("class,text\nchop,knife on a board.\n")
    with pytest.raises(DataError, match=r"d.csv: no descriptions for \['pour'\]"):
        get_generator(f"descriptions:{path}").describe(["chop", "pour"])


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_generator(f"descriptions:{tmp_path / 'none.csv'}")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"chop": "not a list"}))
    with pytest.raises(DataError, match="list of texts"):
        get_generator(f"descriptions:{bad}")
    with pytest.raises(ConfigError, match="give a description file"):
        get_generator("descriptions")


def test_config_changes_with_the_file_content(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("class,text\nchop,knife on a board.\n")
    first = get_generator(f"descriptions:{path}").config()
    path.write_text("class,text\nchop,a knife tapping a board.\n")
    assert get_generator(f"descriptions:{path}").config()["sha256"] != first["sha256"]
