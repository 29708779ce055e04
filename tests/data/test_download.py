"""Kitchen20 download from a real HTTP server on loopback, serving an upstream-layout archive."""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from harken.data.download import ensure_kitchen20, extract_archive
from harken.data.readers import read_kitchen20
from harken.errors import DataError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "www"`` on 127.0.0.1 at an ephemeral port; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def upstream_zip(shared_data) -> tuple[bytes, list[dict]]:
    """A zip in upstream's layout (kitchen20-master/kitchen20.csv, audio/*.wav) of 4 real clips."""
    with open(shared_data / "kitchen20" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    picked = [rows[0], rows[1], rows[300], rows[-1]]
    buffer = io.BytesIO()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["", "category", "fold", "orig_idx", "path", "take", "target", "usr_id"])
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("kitchen20-master/README.md", "ESC-70\n")
        for i, row in enumerate(picked):
            name = Path(row["path"]).with_suffix(".wav").name
            wave, sr = sf.read(str(shared_data / "kitchen20" / row["path"]))
            wav = io.BytesIO()
            sf.write(wav, wave, sr, format="WAV", subtype="PCM_16")
            zf.writestr(f"kitchen20-master/audio/{name}", wav.getvalue())
            writer.writerow(
                [
                    i,
                    row["label"],
                    int(row["fold"]) - 1,
                    i,
                    f"audio/{name}",
                    row["take"],
                    0,
                    row["source_id"],
                ]
            )
        zf.writestr("kitchen20-master/kitchen20.csv", table.getvalue())
    return buffer.getvalue(), picked


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARKEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HARKEN_DATA_DIR", raising=False)
    monkeypatch.delenv("HARKEN_KITCHEN20_URL", raising=False)
    return tmp_path / "cache" / "data"


def test_download_convert_and_read(server, upstream_zip, cache, monkeypatch):
    www, base = server
    data, picked = upstream_zip
    (www / "master.zip").write_bytes(data)
    monkeypatch.setenv("HARKEN_KITCHEN20_URL", f"{base}/master.zip")
    root = ensure_kitchen20(sha256=hashlib.sha256(data).hexdigest())
    assert root == cache / "kitchen20" and (root / "labels.csv").is_file()
    assert [p.name for p in cache.iterdir()] == ["kitchen20"]  # no temp folders left
    m = read_kitchen20()
    expected_ids = [str(Path(r["path"]).with_suffix("")) for r in picked]
    assert [c.clip_id for c in m] == expected_ids
    assert [c.fold for c in m] == [r["fold"] for r in picked]
    assert [c.group for c in m] == [r["source_id"] for r in picked]
    assert all(c.audio_path.is_file() and c.audio_path.parent.name == c.label("label") for c in m)
    (www / "master.zip").unlink()  # found in the cache now: no second download
    assert ensure_kitchen20() == root


def test_sha256_mismatch(server, upstream_zip, cache):
    www, base = server
    (www / "k.zip").write_bytes(upstream_zip[0])
    with pytest.raises(DataError, match="SHA-256"):
        ensure_kitchen20(url=f"{base}/k.zip", sha256="0" * 64)
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_broken_archive_leaves_nothing(server, upstream_zip, cache, damage):
    www, base = server
    data = bytearray(upstream_zip[0])
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # flip bytes inside the first audio file's compressed data: CRC fails mid-extraction
        offset = data.find(b"RIFF") + 1000
        data[offset : offset + 64] = bytes(b ^ 0xFF for b in data[offset : offset + 64])
    (www / "k.zip").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"not a zip or tar archive|corrupt or truncated"):
        ensure_kitchen20(url=f"{base}/k.zip")
    assert list(cache.iterdir()) == []
    assert not (cache / "kitchen20").exists()


def test_http_error_and_no_download(server, cache):
    _, base = server
    with pytest.raises(DataError, match=r"download failed.*HARKEN_KITCHEN20_URL"):
        ensure_kitchen20(url=f"{base}/absent.zip")
    with pytest.raises(DataError, match="Kitchen20 not found"):
        ensure_kitchen20(download=False)


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_path_traversal_is_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, "x")
    with pytest.raises(DataError, match=r"unsafe member path|outside the target"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_links_are_refused(tmp_path):
    import tarfile

    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link"):
        extract_archive(archive, tmp_path / "out")
