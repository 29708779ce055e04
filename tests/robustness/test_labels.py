"""Candidate labels of `harken predict`: empty, duplicated, many, quoted, unicode, colliding
after normalisation, and labels files that are folders or not UTF-8."""

from __future__ import annotations

import json

from .conftest import assert_clean_error, assert_mentions_any, assert_ok, cli


def _predict(capsys, clip, *args):
    return cli(capsys, "predict", clip, *args, "--json")


def _labels_of(result) -> list[str]:
    return [r["label"] for r in json.loads(result.out)[0]["ranking"]]


def test_empty_labels_is_a_usage_error(clip, capsys):
    result = _predict(capsys, clip, "--labels", "")
    assert_clean_error(result, 2, "--labels")


def test_duplicated_labels_are_a_usage_error_naming_them(clip, capsys):
    result = _predict(capsys, clip, "--labels", "chop,pour,chop")
    assert_clean_error(result, 2, "chop", "duplicate")


def test_five_thousand_labels_work(clip, capsys):
    labels = [f"kitchen sound number {i}" for i in range(5000)]
    labels[1234] = "blender"
    result = _predict(capsys, clip, "--labels", ",".join(labels), "--templates", "the sound of {}")
    assert_ok(result)
    ranked = _labels_of(result)
    assert len(ranked) == 5000 and set(ranked) == set(labels)
    assert ranked[0] == "blender"


def test_quoted_comma_stays_inside_one_label(clip, capsys):
    result = _predict(capsys, clip, "--labels", '"salt, pepper",chop')
    assert_ok(result)
    assert sorted(_labels_of(result)) == ["chop", "salt, pepper"]


def test_unicode_labels_work(clip, capsys):
    labels = ["mixeur électrique", "verser de l'eau", "切菜", "Kühlschrank öffnen"]
    result = _predict(capsys, clip, "--labels", ",".join(labels))
    assert_ok(result)
    assert sorted(_labels_of(result)) == sorted(labels)


def test_labels_colliding_after_normalisation_are_a_usage_error(clip, capsys):
    result = _predict(capsys, clip, "--labels", "stove-fan,stove fan,Stove_Fan,chop")
    assert_clean_error(result, 2, "stove-fan", "stove fan", "Stove_Fan")
    assert "'chop'" not in result.err and '"chop"' not in result.err  # only the colliding group


def test_labels_file_that_is_a_folder_is_an_error_naming_it(clip, tmp_path, capsys):
    folder = tmp_path / "my-labels"
    folder.mkdir()
    result = _predict(capsys, clip, "--labels-file", folder)
    assert_clean_error(result, 1, "my-labels")
    assert_mentions_any(result, "folder", "directory")


def test_non_utf8_labels_file_is_a_data_error(clip, tmp_path, capsys):
    path = tmp_path / "labels.txt"
    path.write_bytes("chop\npour\ncrème brûlée\n".encode("latin-1"))
    result = _predict(capsys, clip, "--labels-file", path)
    assert_clean_error(result, 1, "labels.txt", "UTF-8")
