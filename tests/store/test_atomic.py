"""Atomic writes: readers see the old file or the new one, never a torn one or a temp file."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from harken.store.atomic import (
    NpyRowWriter,
    _atomic,
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temps,
)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_land_and_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "sub" / "a.txt", "héllo\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_save_npz(tmp_path / "c.npz", keys=np.array(["k1", "k2"]), x=np.eye(2))
    atomic_save_npy(tmp_path / "d.npy", np.arange(5))
    assert (tmp_path / "sub" / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with np.load(tmp_path / "c.npz") as z:
        assert z["keys"].tolist() == ["k1", "k2"]
        np.testing.assert_array_equal(z["x"], np.eye(2))
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), np.arange(5))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "c.npz", "d.npy", "sub"]


def test_overwrite_replaces_the_content(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text(path, '{"UA": 0.5}')

    def half_then_crash(f):
        f.write(b'{"UA": 0.')
        raise KeyboardInterrupt  # even a Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        _atomic(path, half_then_crash)
    assert path.read_text() == '{"UA": 0.5}'
    assert _leftovers(tmp_path) == []


def test_failing_public_writers_leave_the_old_file_intact(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")
    assert path.read_bytes() == b"old"

    class Unsaveable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("cannot convert")

    npz = tmp_path / "a.npz"
    atomic_save_npz(npz, x=np.ones(3))
    with pytest.raises(RuntimeError, match="cannot convert"):
        atomic_save_npz(npz, x=np.zeros(3), y=Unsaveable())
    with np.load(npz) as z:
        np.testing.assert_array_equal(z["x"], np.ones(3))
    assert _leftovers(tmp_path) == []


def test_npy_row_writer_streams_rows_and_keeps_the_chosen_ones(tmp_path):
    path = tmp_path / "rows.npy"
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    with NpyRowWriter(path, 6) as writer:
        writer.write(np.array([4, 1]), rows[[4, 1]])  # any order, any block size
        writer.write(np.array([0, 2, 3, 5]), rows[[0, 2, 3, 5]])
        assert not path.exists()  # nothing visible before the commit
        writer.commit([0, 2, 3, 5], chunk=3)
    np.testing.assert_array_equal(np.load(path), rows[[0, 2, 3, 5]])
    assert [p.name for p in tmp_path.iterdir()] == ["rows.npy"]


def test_npy_row_writer_without_a_commit_leaves_nothing(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, np.zeros((1, 1), np.float32))  # an older output stays as it was
    with pytest.raises(RuntimeError), NpyRowWriter(path, 3) as writer:
        writer.write(np.array([0]), np.ones((1, 4), np.float32))
        raise RuntimeError("killed mid-way")
    assert [p.name for p in tmp_path.iterdir()] == ["rows.npy"]
    np.testing.assert_array_equal(np.load(path), np.zeros((1, 1)))


def test_stale_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    path = tmp_path / "emb.npy"
    old, fresh = tmp_path / ".emb.npy.k1ll3d.tmp", tmp_path / ".emb.npy.w0rk1ng.tmp"
    others = [tmp_path / ".other.npy.k1ll3d.tmp", tmp_path / "emb.npy.tmp", tmp_path / "emb.npy"]
    two_hours_ago = time.time() - 7200
    for f in [old, fresh, *others]:
        f.write_bytes(b"x")
    for f in [old, *others]:
        os.utime(f, (two_hours_ago, two_hours_ago))
    assert remove_stale_temps(path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, *(f.name for f in others)]
    )
