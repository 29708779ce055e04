"""Dataset CSVs in the generic layout, through `harken index my.csv` and `harken run`.

Malformed CSVs are data errors (exit 1) naming the file (and row) and what was expected; blank
rows and a UTF-8 byte-order mark are harmless; a class with a single clip still runs where the
protocol does not need more than one clip per class.
"""

from __future__ import annotations

import json
import re

from .conftest import (
    assert_clean_error,
    assert_ok,
    cli,
    kitchen_rows,
    write_csv,
    write_wav,
)


def _index(capsys, csv_path, out):
    return cli(capsys, "index", csv_path, "--out", out)


def _indexed_count(out) -> int:
    return json.loads((out / "index.json").read_text())["count"]


def test_missing_path_column_is_a_data_error(shared_data, tmp_path, capsys):
    rows = [{"file": r["path"], "label": r["label"]} for r in kitchen_rows(shared_data)]
    csv_path = write_csv(tmp_path / "no-path.csv", rows, columns=("file", "label"))
    result = _index(capsys, csv_path, tmp_path / "index")
    assert_clean_error(result, 1, "no-path.csv", "path")
    assert not (tmp_path / "index").exists()


def test_missing_label_column_is_a_data_error(shared_data, tmp_path, capsys):
    csv_path = write_csv(tmp_path / "no-label.csv", kitchen_rows(shared_data), columns=("path",))
    result = cli(capsys, "run", _all_classes_toml(tmp_path, csv_path), "--out", tmp_path / "run")
    assert_clean_error(result, 1, "no-label.csv", "label")


def test_blank_rows_are_skipped(shared_data, tmp_path, capsys):
    rows = kitchen_rows(shared_data, per_class=2)
    csv_path = write_csv(tmp_path / "blanks.csv", rows)
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    lines = [lines[0], "", *lines[1:4], "", "   ", *lines[4:], "", ""]
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _index(capsys, csv_path, tmp_path / "index")
    assert_ok(result)
    assert _indexed_count(tmp_path / "index") == len(rows)


def test_utf8_byte_order_mark_is_harmless(shared_data, tmp_path, capsys):
    rows = kitchen_rows(shared_data, per_class=2)
    csv_path = write_csv(tmp_path / "bom.csv", rows)
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    result = _index(capsys, csv_path, tmp_path / "index")
    assert_ok(result)
    assert _indexed_count(tmp_path / "index") == len(rows)


def test_non_utf8_csv_is_a_data_error_naming_the_row(shared_data, tmp_path, capsys):
    rows = kitchen_rows(shared_data, per_class=2)
    rows[1]["label"] = "crème-brûlée"  # data row 2 = line 3 of the file
    csv_path = tmp_path / "latin1.csv"
    header = "path,label\n"
    body = "".join(f"{r['path']},{r['label']}\n" for r in rows)
    csv_path.write_bytes((header + body).encode("latin-1"))
    result = _index(capsys, csv_path, tmp_path / "index")
    assert_clean_error(result, 1, "latin1.csv", "UTF-8")
    assert re.search(r"(line|row)\D{0,3}3\b", result.err), result.describe()


def test_path_escaping_the_csv_folder_is_a_data_error(wave, shared_data, tmp_path, capsys):
    outside = write_wav(tmp_path / "outside.wav", *wave)  # exists, but outside the CSV's folder
    rows = kitchen_rows(shared_data, per_class=1)
    rows.append({"path": "../outside.wav", "label": "blender"})
    csv_path = write_csv(tmp_path / "dataset" / "escape.csv", rows)
    assert (csv_path.parent / "../outside.wav").resolve() == outside.resolve()
    result = _index(capsys, csv_path, tmp_path / "index")
    assert_clean_error(result, 1, "escape.csv", "../outside.wav")
    assert not (tmp_path / "index").exists()


def _all_classes_toml(tmp_path, csv_path):
    config = tmp_path / "all-classes.toml"
    config.write_text(
        f'[data]\ndataset = "{csv_path}"\n[protocol]\nprotocol = "all-classes"\n'
        '[methods]\nnames = ["bridge"]\nseeds = [0]\n',
        encoding="utf-8",
    )
    return config


def test_one_clip_class_runs_where_the_protocol_allows_it(shared_data, tmp_path, capsys):
    rows = kitchen_rows(shared_data, per_class=2)
    rows = [r for r in rows if r["label"] != "microwave"]
    rows.append(kitchen_rows(shared_data, classes=("microwave",), per_class=1)[0])
    csv_path = write_csv(tmp_path / "one-clip.csv", rows)
    out = tmp_path / "run"
    result = cli(capsys, "run", _all_classes_toml(tmp_path, csv_path), "--out", out)
    assert_ok(result)
    results = json.loads((out / "results.json").read_text())
    fold = results["methods"]["bridge"]["folds"][0]
    assert sorted(fold["test_classes"]) == sorted(
        ["blender", "chopping", "microwave", "water-flowing"]
    )
