"""Run folders: valid JSON / CSV files and a manifest that allows reproducing the run."""

from __future__ import annotations

import csv
import json
import time

import pytest

from harken.store.runs import PACKAGES, RunFolder, git_commit, package_versions


def test_write_json_produces_valid_json(tmp_path):
    run = RunFolder(tmp_path / "run")
    path = run.write_json("results.json", {"UA": 0.25, "path": tmp_path, "folds": [1, 2]})
    assert path == tmp_path / "run" / "results.json"
    loaded = json.loads(path.read_text())
    assert loaded == {"UA": 0.25, "path": str(tmp_path), "folds": [1, 2]}  # Paths as strings


def test_write_csv_round_trips_awkward_values(tmp_path):
    run = RunFolder(tmp_path)
    rows = [["clip,1", 'say "hi"', 0.5], ["clip2", "line\nbreak", 1]]
    path = run.write_csv("predictions.csv", ["clip_id", "text", "score"], rows)
    with open(path, newline="") as f:
        read = list(csv.reader(f))
    assert read == [["clip_id", "text", "score"], *[[str(v) for v in r] for r in rows]]


def test_manifest_records_versions_commit_fields_and_timings(tmp_path):
    run = RunFolder(tmp_path)
    with run.stage("encode"):
        time.sleep(0.02)
    with run.stage("encode"):  # stages accumulate
        time.sleep(0.02)
    with pytest.raises(ValueError), run.stage("train"):
        raise ValueError("a failing stage is still timed")
    path = run.write_manifest(config={"method": "linear", "seed": 0}, prompts=["a {}"])
    manifest = json.loads(path.read_text())
    assert path.name == "manifest.json"
    assert manifest["config"] == {"method": "linear", "seed": 0}
    assert manifest["prompts"] == ["a {}"]
    assert "git_commit" in manifest
    assert manifest["git_commit"] is None or len(manifest["git_commit"].split("+")[0]) == 40
    assert set(manifest["packages"]) == set(PACKAGES)
    assert manifest["packages"]["numpy"] and manifest["packages"]["torch"]
    assert manifest["harken_version"] == manifest["packages"]["harken"]
    timings = manifest["timings_s"]
    assert timings["encode"] >= 0.04
    assert "train" in timings
    assert timings["total"] >= timings["encode"]
    assert manifest["python"].count(".") == 2


def test_package_versions_reports_missing_packages_as_none():
    versions = package_versions(("numpy", "surely-not-an-installed-package"))
    assert versions["numpy"] and versions["surely-not-an-installed-package"] is None


def test_git_commit_outside_a_repository_is_none(tmp_path):
    assert git_commit(tmp_path / "file.py") is None


def test_git_commit_of_this_checkout():
    commit = git_commit()
    if commit is None:
        pytest.skip("not a git checkout")
    sha, _, flag = commit.partition("+")
    assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha)
    assert flag in ("", "dirty")


def test_manifest_records_the_commit_the_run_started_from(tmp_path, monkeypatch):
    import harken.store.runs as runs

    monkeypatch.setattr(runs, "git_commit", lambda start=None: "abc123")
    folder = RunFolder(tmp_path / "run")
    monkeypatch.setattr(runs, "git_commit", lambda start=None: "def456+dirty")  # code edited
    folder.write_manifest()
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["git_commit"] == "abc123"
