"""Output folders harken must not clobber: run folders and index folders it did not write.

A non-empty run folder needs ``--overwrite`` or ``--resume`` (exit 2 otherwise, saying so); a
folder harken did not write is refused even with ``--overwrite``; `harken index --out X` never
replaces a folder whose ``index.json`` harken did not write. Refused folders are left untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import QUICK_SECONDS, assert_clean_error, cli, feature_files


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def run_config(four_class_csv, tmp_path) -> Path:
    """A small valid training-free config on the 4-class CSV."""
    config = tmp_path / "exp.toml"
    config.write_text(
        f'[data]\ndataset = "{four_class_csv}"\n[protocol]\nprotocol = "all-classes"\n'
        '[methods]\nnames = ["bridge"]\nseeds = [0]\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture
def foreign_folder(tmp_path) -> Path:
    """A folder of the user's own files (harken never wrote here)."""
    folder = tmp_path / "my-results"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (folder / "results.json").write_text('{"mine": true}\n', encoding="utf-8")
    return folder


def test_run_into_a_non_empty_folder_needs_overwrite_or_resume(
    run_config, foreign_folder, fresh_cache, capsys
):
    before = _snapshot(foreign_folder)
    result = cli(capsys, "run", run_config, "--out", foreign_folder)
    assert_clean_error(result, 2, "my-results", "--overwrite", "--resume")
    assert result.seconds < QUICK_SECONDS, f"took {result.seconds:.1f} s: work was done first"
    assert feature_files(fresh_cache) == []
    assert _snapshot(foreign_folder) == before


def test_overwrite_refuses_a_folder_harken_did_not_write(
    run_config, foreign_folder, fresh_cache, capsys
):
    before = _snapshot(foreign_folder)
    result = cli(capsys, "run", run_config, "--out", foreign_folder, "--overwrite")
    assert_clean_error(result, 2, "my-results")
    assert feature_files(fresh_cache) == []
    assert _snapshot(foreign_folder) == before, "files in a foreign folder were changed"


def test_index_refuses_a_folder_with_a_foreign_index_json(clip, tmp_path, capsys):
    folder = tmp_path / "search-index"
    folder.mkdir()
    (folder / "index.json").write_text('{"my": "own index"}\n', encoding="utf-8")
    (folder / "embeddings.bin").write_bytes(b"\x00\x01\x02 not harken's")
    (folder / "README.txt").write_text("do not delete\n", encoding="utf-8")
    before = _snapshot(folder)
    result = cli(capsys, "index", clip, "--out", folder)
    assert_clean_error(result, 2, "search-index")
    assert _snapshot(folder) == before, "files in a foreign index folder were changed"
