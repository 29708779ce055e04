"""Paths: missing files, awkward names, symlink loops, folders mixing good and bad files, and
an output path that is a folder.

In a folder (or a list of files) unreadable files are skipped and listed at the end while the
good files' results are written; the exit code is 0 unless every file failed, and ``--strict``
makes any bad file fatal (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import (
    QUICK_SECONDS,
    assert_clean_error,
    assert_ok,
    cli,
    feature_files,
    write_wav,
)


def test_missing_path_is_a_data_error(tmp_path, capsys):
    missing = tmp_path / "no-such-clip.wav"
    result = cli(capsys, "predict", missing, "--labels", "chop,pour")
    assert_clean_error(result, 1, "no-such-clip.wav", "not found")


def test_path_with_spaces_and_unicode_works(wave, tmp_path, capsys):
    data, rate = wave
    path = write_wav(tmp_path / "my clips" / "mixeur café 搅拌机.wav", data, rate)
    result = cli(capsys, "predict", path, "--labels", "blender,water flowing", "--json")
    assert_ok(result)
    out = json.loads(result.out)
    assert out[0]["file"] == str(path)
    assert out[0]["ranking"][0]["label"] == "blender"


def test_symlink_loop_is_a_data_error_naming_the_path(tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.symlink_to(b)
    b.symlink_to(a)
    result = cli(capsys, "embed", a, "--out", tmp_path / "emb.npy")
    assert_clean_error(result, 1, "a.wav")
    assert not (tmp_path / "emb.npy").exists()


#: Why each unusable file of the mixed folder fails (any of these words on its stderr line).
REASONS = {
    "2-empty.wav": ("empty", "0 bytes"),
    "3-notes.wav": ("decode", "corrupt", "format", "not an audio"),
    "5-zeros.wav": ("silent",),
}


@pytest.fixture
def mixed_folder(wave, other_wave, tmp_path) -> tuple[Path, list[Path], list[Path]]:
    """A folder of two real clips and three unusable files (empty, text, all zeros)."""
    folder = tmp_path / "mixed"
    good = [
        write_wav(folder / "1-blender.wav", *wave),
        write_wav(folder / "4-water.wav", *other_wave),
    ]
    empty = folder / "2-empty.wav"
    empty.write_bytes(b"")
    text = folder / "3-notes.wav"
    text.write_text("not audio\n" * 50, encoding="utf-8")
    zeros = write_wav(folder / "5-zeros.wav", np.zeros(32000, np.float32), 16000)
    return folder, good, [empty, text, zeros]


def _assert_bad_files_listed(result, bad: list[Path]) -> None:
    """Each bad file is named on stderr, on a line that gives its reason."""
    assert "Traceback" not in result.err, result.describe()
    for path in bad:
        lines = [line.casefold() for line in result.err.splitlines() if path.name in line]
        assert lines, f"{path.name} not listed\n{result.describe()}"
        reasons = REASONS[path.name]
        assert any(r in line for line in lines for r in reasons), (
            f"{path.name} listed without its reason ({reasons})\n{result.describe()}"
        )


def test_folder_with_good_and_bad_files_embeds_the_good_ones(mixed_folder, tmp_path, capsys):
    folder, good, bad = mixed_folder
    out = tmp_path / "emb.npy"
    result = cli(capsys, "embed", folder, "--encoder", "yamnet", "--out", out)
    assert_ok(result)
    _assert_bad_files_listed(result, bad)
    emb = np.load(out)
    assert emb.shape == (len(good), 521) and np.all(np.isfinite(emb))


def test_folder_with_good_and_bad_files_predicts_the_good_ones(mixed_folder, capsys):
    folder, good, bad = mixed_folder
    result = cli(capsys, "predict", folder, "--labels", "blender,water flowing", "--json")
    assert_ok(result)
    _assert_bad_files_listed(result, bad)
    out = json.loads(result.out)
    assert [Path(o["file"]).name for o in out] == [p.name for p in good]
    assert [o["ranking"][0]["label"] for o in out] == ["blender", "water flowing"]


@pytest.mark.parametrize("command", ["embed", "predict"])
def test_folder_with_a_bad_file_fails_with_strict(command, mixed_folder, tmp_path, capsys):
    folder, _, bad = mixed_folder
    out = tmp_path / "emb.npy"
    args = ["--out", out] if command == "embed" else ["--labels", "blender,water flowing"]
    result = cli(capsys, command, folder, *args, "--strict")
    assert_clean_error(result, 1)
    assert any(p.name in result.err for p in bad), result.describe()
    assert not out.exists()


def test_embed_out_pointing_at_a_folder_fails_before_any_work(
    shared_data, fresh_cache, tmp_path, capsys
):
    folder = tmp_path / "results"
    folder.mkdir()
    clips = shared_data / "kitchen20" / "audio" / "chopping"  # ~50 clips: seconds of work
    result = cli(capsys, "embed", clips, "--encoder", "yamnet", "--out", folder)
    assert_clean_error(result, 2, "results")
    assert result.seconds < QUICK_SECONDS, f"took {result.seconds:.1f} s: work was done first"
    assert feature_files(fresh_cache) == []
    assert list(folder.iterdir()) == []
