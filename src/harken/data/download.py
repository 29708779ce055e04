"""Dataset downloads into the harken cache: streamed, verified, safely extracted, atomic.

Kitchen20 is published as a GitHub repository (github.com/marc-moreaux/kitchen20, branch
``master``, ~325 MB) that holds its audio itself: ``audio/<fold>-<usr_id>-<take>-<target>.wav``
(44.1 kHz WAV) and the clip table ``kitchen20.csv`` (``,category,fold,orig_idx,path,take,target,
usr_id``, folds 0–8). :func:`ensure_kitchen20` downloads the repository archive, moves the clips
to ``audio/<category>/`` and writes harken's ``labels.csv`` (``path,label,fold,source_id,take``,
folds 1–9), the layout :func:`harken.data.readers.read_kitchen20` reads.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from harken.errors import DataError

log = logging.getLogger(__name__)

KITCHEN20_URL = "https://github.com/marc-moreaux/kitchen20/archive/refs/heads/master.zip"
KITCHEN20_URL_ENV = "HARKEN_KITCHEN20_URL"
KITCHEN20_FOLDER = "kitchen20"
UPSTREAM_CSV = "kitchen20.csv"
LABELS_CSV = "labels.csv"
CHUNK = 1 << 20
#: Seconds to wait for the connection and for each read: a transfer that stalls (the server
#: stops sending mid-file) fails after this long instead of hanging.
TIMEOUT = 60.0


def default_data_cache() -> Path:
    """``$HARKEN_CACHE_DIR/data``, or ``~/.cache/harken/data``."""
    return Path(os.environ.get("HARKEN_CACHE_DIR", Path.home() / ".cache" / "harken")) / "data"


def _is_kitchen20(folder: Path) -> bool:
    return (folder / LABELS_CSV).is_file() or (folder / UPSTREAM_CSV).is_file()


def ensure_kitchen20(
    data_dir: str | Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    download: bool = True,
) -> Path:
    """Return a folder holding Kitchen20, downloading it into the cache when needed.

    Search order: ``data_dir`` and ``data_dir/kitchen20``; ``$HARKEN_DATA_DIR/kitchen20`` and
    ``$HARKEN_DATA_DIR``; ``<cache>/kitchen20`` (:func:`default_data_cache`). A folder counts when
    it holds ``labels.csv`` or upstream's ``kitchen20.csv``.

    Args:
        data_dir: Folder to look in first.
        url: Archive URL (zip or tar); default ``$HARKEN_KITCHEN20_URL`` or :data:`KITCHEN20_URL`.
        sha256: Expected SHA-256 of the archive, checked when given.
        download: Download when not found; False raises instead.

    Returns:
        The dataset folder.

    Raises:
        DataError: not found and ``download`` is False, or the download/extraction failed (the
            cache is left without a partial folder).
    """
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / KITCHEN20_FOLDER]
    env = os.environ.get("HARKEN_DATA_DIR")
    if env:
        candidates += [Path(env).expanduser() / KITCHEN20_FOLDER, Path(env).expanduser()]
    target = default_data_cache() / KITCHEN20_FOLDER
    candidates.append(target)
    for folder in candidates:
        if _is_kitchen20(folder):
            return folder
    looked = ", ".join(str(c) for c in candidates)
    if not download:
        raise DataError(
            f"Kitchen20 not found (looked in {looked}); pass data_dir, set HARKEN_DATA_DIR, or "
            "allow the download"
        )
    if data_dir is not None:
        log.warning("Kitchen20 not found in %s; downloading it into %s", data_dir, target)
    url = url or os.environ.get(KITCHEN20_URL_ENV) or KITCHEN20_URL
    download_and_extract(
        url, target, sha256=sha256, prepare=convert_upstream_kitchen20, marker=_is_kitchen20
    )
    return target


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, size: int | None = None
) -> Path:
    """Stream ``url`` to ``dest`` (through a temporary file), checking its size and hash.

    Args:
        url: http(s) or file URL.
        dest: Final file path; written only when the download is complete and verified.
        sha256: Expected SHA-256 hex digest, or None.
        size: Expected size in bytes, or None (the server's Content-Length is checked anyway).

    Returns:
        ``dest``.

    Raises:
        DataError: network failure, truncated transfer, size or hash mismatch.
    """
    import http.client  # here, not at the top: importing harken stays fast
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    hasher = hashlib.sha256()
    received = 0
    advice = (
        f"check the connection, or download {url} yourself and pass its folder as data_dir "
        f"(or set {KITCHEN20_URL_ENV} to a mirror)"
    )
    try:
        opener = urllib.request.build_opener()  # the proxy settings of now, not of a first call
        with os.fdopen(fd, "wb") as out, opener.open(url, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(
                total=expected, unit="B", unit_scale=True, desc=f"download {dest.name}", leave=False
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DataError(f"{url}: download truncated ({received} of {expected} bytes); {advice}")
        if size is not None and received != size:
            raise DataError(f"{url}: got {received} bytes, expected {size}; {advice}")
        if sha256 is not None and hasher.hexdigest() != sha256.lower():
            raise DataError(
                f"{url}: SHA-256 {hasher.hexdigest()} differs from the expected {sha256}; the file "
                f"changed upstream or the transfer was corrupted; {advice}"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DataError(f"{url}: download failed ({type(exc).__name__}: {exc}); {advice}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _safe_target(dest: Path, name: str, archive: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DataError(
            f"{archive}: unsafe member path {name!r} (leaves the target folder); "
            "refusing to extract this archive"
        )
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DataError(
            f"{archive}: member {name!r} resolves outside the target folder; "
            "refusing to extract this archive"
        )
    return target


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``dest``, refusing path traversal and links.

    Raises:
        DataError: not an archive, corrupt/truncated, or a member would land outside ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = _safe_target(dest, info.filename, archive)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    target = _safe_target(dest, member.name, archive)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif member.isfile():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        src = tf.extractfile(member)
                        assert src is not None  # regular file members always have data
                        with src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out, CHUNK)
                    else:
                        raise DataError(
                            f"{archive}: member {member.name!r} is a link or device; "
                            "refusing to extract this archive"
                        )
        else:
            raise DataError(
                f"{archive}: not a zip or tar archive (truncated or wrong URL?); "
                "delete it and download again"
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{archive}: the archive is corrupt or truncated ({exc}); download it again"
        ) from exc


def _find_root(folder: Path, marker) -> Path | None:
    for candidate in [folder, *sorted(folder.iterdir()), *sorted(folder.glob("*/*"))]:
        if candidate.is_dir() and marker(candidate):
            return candidate
    return None


def download_and_extract(
    url: str, target: Path, *, sha256: str | None = None, prepare=None, marker=None
) -> Path:
    """Download an archive and extract it so that ``target`` appears complete or not at all.

    The archive is extracted into a temporary sibling folder; the folder inside it that satisfies
    ``marker`` (e.g. holds the dataset's CSV) is passed to ``prepare`` (a converter) and then
    renamed to ``target`` in one step. On any failure the temporary files are removed.

    Args:
        url: Archive URL.
        target: Final dataset folder (must not exist).
        sha256: Expected archive SHA-256, or None.
        prepare: Optional ``callable(folder)`` run on the extracted folder before the rename.
        marker: ``callable(folder) -> bool`` recognising the dataset root inside the archive.

    Returns:
        ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        name = PurePosixPath(urllib.parse.urlparse(url).path).name or "archive"
        archive = download_file(url, work / name, sha256=sha256)
        extracted = work / "extracted"
        extract_archive(archive, extracted)
        archive.unlink()
        root = _find_root(extracted, marker) if marker is not None else extracted
        if root is None:
            raise DataError(
                f"{url}: the archive does not hold the expected dataset files; check the URL"
            )
        if prepare is not None:
            prepare(root)
        try:
            os.replace(root, target)
        except OSError:
            if marker is not None and marker(target):  # another process finished first
                return target
            raise DataError(f"{target} exists but is incomplete; delete it and retry") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def convert_upstream_kitchen20(root: Path) -> None:
    """Turn an upstream Kitchen20 checkout into harken's layout, in place.

    Moves ``audio/<name>.wav`` to ``audio/<category>/<name>.wav`` and writes ``labels.csv``
    (``path,label,fold,source_id,take``; fold = upstream fold + 1). A folder that already has
    ``labels.csv`` is left alone.

    Raises:
        DataError: ``kitchen20.csv`` lacks a column, or a listed audio file is missing.
    """
    if (root / LABELS_CSV).is_file():
        return
    src_csv = root / UPSTREAM_CSV
    with open(src_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        needed = {"path", "category", "fold", "usr_id", "take"}
        if not needed <= set(reader.fieldnames or []):
            raise DataError(
                f"{src_csv}: expected columns {sorted(needed)}, got "
                f"{reader.fieldnames}; the upstream layout changed, report it"
            )
        rows = list(reader)
    out_rows = []
    for line, row in enumerate(rows, start=2):
        old = root / row["path"]
        new_rel = PurePosixPath("audio", row["category"], PurePosixPath(row["path"]).name)
        new = root / new_rel
        if not new.exists():
            if not old.is_file():
                raise DataError(
                    f"{src_csv}, line {line}: audio file {row['path']} is missing "
                    "from the download; download again"
                )
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, new)
        try:
            fold = str(int(row["fold"]) + 1)
        except ValueError:
            raise DataError(
                f"{src_csv}, line {line}: fold {row['fold']!r} is not an integer"
            ) from None
        out_rows.append([str(new_rel), row["category"], fold, row["usr_id"], row["take"]])
    tmp = root / (LABELS_CSV + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "fold", "source_id", "take"])
        writer.writerows(out_rows)
    os.replace(tmp, root / LABELS_CSV)
