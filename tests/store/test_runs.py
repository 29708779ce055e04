"""Run folders: valid JSON / CSV files, a manifest that allows reproducing the run, and folders
that never mix two runs (new / overwrite / resume)."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from harken.errors import ConfigError, DataError
from harken.store.runs import (
    MARKER,
    PACKAGES,
    RunFolder,
    config_differences,
    git_commit,
    package_versions,
)


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


# --- run folders that cannot mix runs ----------------------------------------------------------


def _harken_run(path, config=None):
    """A finished harken run folder (marker, manifest, a stale-looking fold file)."""
    folder = RunFolder(path)
    folder.begin(config or {"folds": 5, "seeds": [0]})
    folder.write_json("splits/fold4.json", {"train": ["a"], "dev": [], "test": ["b"]})
    folder.write_manifest(config=config or {"folds": 5, "seeds": [0]})
    return path


def test_new_run_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "run").mkdir()
    RunFolder(tmp_path / "run")  # an empty folder is fine
    (tmp_path / "run" / "notes.txt").write_text("mine")
    (tmp_path / "run" / MARKER).unlink()
    with pytest.raises(ConfigError, match=r"--overwrite.*--resume.*another folder") as exc:
        RunFolder(tmp_path / "run")
    assert exc.value.exit_code == 2
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_a_run_that_stopped_before_writing_anything_does_not_block_a_new_one(tmp_path):
    started = RunFolder(tmp_path / "run")
    started.begin({"data_dir": "/wrong/place"})  # e.g. the dataset could not be read
    again = RunFolder(tmp_path / "run")  # mode "new": nothing of the first run to keep
    again.begin({"data_dir": "/right/place"})
    assert json.loads((tmp_path / "run" / MARKER).read_text())["config"] == {
        "data_dir": "/right/place"
    }
    again.write_json("results.json", {})
    with pytest.raises(ConfigError, match="not empty"):
        RunFolder(tmp_path / "run")


def test_overwrite_clears_a_harken_run_folder(tmp_path):
    run = _harken_run(tmp_path / "run")
    (run / "units").mkdir()
    (run / "units" / "x.json").write_text("{}")
    folder = RunFolder(run, mode="overwrite")
    assert [p.name for p in run.iterdir()] == [MARKER]  # old fold4.json, units, manifest: gone
    folder.begin({"folds": 2})
    assert json.loads((run / MARKER).read_text())["config"] == {"folds": 2}


@pytest.mark.parametrize("mode", ["overwrite", "resume"])
def test_a_folder_harken_did_not_write_is_refused_in_every_mode(tmp_path, mode):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(ConfigError, match=f"not a harken run folder.*--{mode}"):
        RunFolder(mine, mode=mode)
    assert (mine / "chapter1.tex").read_text() == "precious"
    # a file named manifest.json that harken did not write is no marker either
    (mine / "manifest.json").write_text('{"title": "my thesis"}')
    with pytest.raises(ConfigError, match="not a harken run folder"):
        RunFolder(mine, mode="overwrite")
    assert (mine / "chapter1.tex").exists()


def test_a_run_folder_of_an_older_harken_counts_as_harken_s(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    manifest = {"harken_version": "0.1", "packages": {}, "timings_s": {}, "config": {"folds": 5}}
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / "results.json").write_text("{}")
    RunFolder(old, mode="overwrite")
    assert [p.name for p in old.iterdir()] == [MARKER]


def test_resume_keeps_the_folder_and_refuses_another_config(tmp_path):
    run = _harken_run(tmp_path / "run", {"folds": 5, "seeds": [0], "progress": True})
    folder = RunFolder(run, mode="resume")
    assert (run / "splits" / "fold4.json").exists()
    # keys that do not change results may differ
    folder.begin({"folds": 5, "seeds": [0], "progress": False})
    with pytest.raises(ConfigError, match=r"differs .* in \['folds', 'seeds'\]") as exc:
        RunFolder(run, mode="resume").begin({"folds": 2, "seeds": [0, 1], "progress": False})
    assert exc.value.exit_code == 2


def test_units_are_reused_only_when_resuming(tmp_path):
    folder = RunFolder(tmp_path / "run")
    unit = {"row": {"UA": np.float32(0.5), "fold": np.int64(1)}, "predictions": [["c", "a", "b"]]}
    folder.save_unit(unit, "clap:/models/x", 1, 0)
    assert folder.load_unit("clap:/models/x", 1, 0) is None  # a new run recomputes
    resumed = RunFolder(tmp_path / "run", mode="resume")
    assert resumed.load_unit("clap:/models/x", 1, 0) == {
        "row": {"UA": 0.5, "fold": 1},
        "predictions": [["c", "a", "b"]],
    }
    assert resumed.load_unit("clap:/models/x", 2, 0) is None
    assert resumed.unit("a/b", 0, 0) != resumed.unit("a_b", 0, 0)  # distinct names, one folder
    resumed.unit("a/b", 0, 0).write_text("{broken")
    with pytest.raises(DataError, match="delete it and resume"):
        resumed.load_unit("a/b", 0, 0)


def test_unknown_mode_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mode must be one of"):
        RunFolder(tmp_path, mode="append")


def test_config_differences_names_changed_added_and_removed_keys():
    old = {"a": 1, "b": [1, 2], "c": "x", "store_dir": "/one"}
    new = {"a": 1, "b": [1, 3], "d": None, "store_dir": "/two"}
    assert config_differences(old, new) == ["b", "c", "d"]


# --- stale split files -------------------------------------------------------------------------


def test_read_splits_refuses_fold_files_the_run_does_not_list(tmp_path):
    from harken.protocols.splits import Split, read_splits, write_splits

    five = [Split(k, ("t1", "t2"), (), (f"c{k}",)) for k in range(5)]
    folder = RunFolder(tmp_path / "run")
    write_splits(five, folder.path / "splits")
    two = five[:2]
    write_splits(two, folder.path / "splits")  # a smaller run into the same folder
    folder.write_manifest(splits={"folds": [0, 1]})
    with pytest.raises(DataError, match=r"fold2\.json.*fold3\.json.*fold4\.json"):
        read_splits(folder.path / "splits")
    for k in (2, 3, 4):
        (folder.path / "splits" / f"fold{k}.json").unlink()
    assert read_splits(folder.path / "splits") == two
    (folder.path / "splits" / "fold1.json").unlink()
    with pytest.raises(DataError, match=r"missing: \['fold1\.json'\]"):
        read_splits(folder.path / "splits")
    # a split folder outside a run (user-supplied splits) is read as it is
    write_splits(five, tmp_path / "mine")
    assert read_splits(tmp_path / "mine") == five


def test_read_splits_of_a_run_folder_checks_the_manifest(tmp_path):
    from harken.protocols.splits import Split, read_splits

    folder = RunFolder(tmp_path / "run")
    for k in range(3):  # fold files of an older run, no folds.json
        folder.write_json(f"splits/fold{k}.json", Split(k, ("a",), (), (f"c{k}",)).to_dict())
    folder.write_manifest(splits={"folds": [0, 1]})
    with pytest.raises(DataError, match=r"fold2\.json"):
        read_splits(tmp_path / "run" / "splits")


# --- provenance: the commit of harken's own checkout only ---------------------------------------


def _git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _repo(root, name: str, package: str) -> Path:
    """A git repository whose pyproject names ``name``, holding a package at ``package``."""
    root.mkdir()
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1"\n')
    pkg = root / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "init")
    return pkg / "__init__.py"


def test_git_commit_of_a_harken_checkout(tmp_path):
    init = _repo(tmp_path / "harken", "harken", "src/harken")
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path / "harken", capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(init) == sha
    (tmp_path / "harken" / "pyproject.toml").write_text('[project]\nname = "harken"\n# edit\n')
    assert git_commit(init) == sha + "+dirty"


@pytest.mark.parametrize(
    "name, package",
    [
        ("my-project", "src/harken"),  # another project's repository
        ("my-project", ".venv/lib/python3.12/site-packages/harken"),  # installed inside it
        ("harken", "vendor/harken"),  # a harken pyproject, but not this package
    ],
)
def test_git_commit_of_an_enclosing_repository_that_is_not_harken_is_none(tmp_path, name, package):
    init = _repo(tmp_path / "repo", name, package)
    assert git_commit(init) is None


def test_manifest_of_an_installed_package_says_so(tmp_path, monkeypatch):
    import harken.store.runs as runs

    monkeypatch.setattr(runs, "git_commit", lambda start=None: None)
    folder = RunFolder(tmp_path / "run")
    manifest = json.loads(folder.write_manifest().read_text())
    assert manifest["git_commit"] is None and manifest["source"] == "installed package"
    assert manifest["harken_version"] == package_versions(("harken",))["harken"]
    monkeypatch.setattr(runs, "git_commit", lambda start=None: "a" * 40)
    manifest = json.loads(RunFolder(tmp_path / "run2").write_manifest().read_text())
    assert manifest["source"] == "git checkout" and manifest["git_commit"] == "a" * 40
