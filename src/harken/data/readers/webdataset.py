"""WebDataset shards: audio samples packed in ``.tar`` files (the LAION-audio layout).

A shard is a tar archive whose members are grouped into samples by key (the member name up to
its first dot), read with the ``webdataset`` package::

    shards-000.tar
        000000.flac   000000.json       ← one sample: audio + metadata
        000001.wav    000001.json
        ...

Every sample needs exactly one audio member (``.flac``, ``.wav``, ``.mp3``, ``.ogg``, ...;
samples without one are skipped with a warning); its optional ``.json`` member gives the
clip's metadata like a row of the generic CSV (:mod:`harken.data.readers.generic`): ``start``,
``end``, ``fold``, ``group``, ``narration``, ``sounding`` and ``id``/``clip_id`` are read as
such, and every other top-level key whose value is a string or an integer is a label column
(``"label": "blender"``, ``"category": "dog"``); a list of strings (LAION's ``"text": [caption,
...]``) gives its first item. Other values (objects such as LAION's ``original_data``) are
left out. The clip id is ``<shard stem>/<key>`` unless the json gives one.

A spec is a shard path, a brace pattern (``shards-{000..009}.tar``, expanded by
``braceexpand`` as webdataset does) or a folder holding shards; relative paths are taken from
``data_dir`` when given.

**Members become files.** The feature store keys a clip by the bytes of its file and its span,
and decoding, length checks and the process/Ray executors all read files. So each audio member
is written once into a content-addressed folder, ``<cache dir>/data/webdataset/audio/<2 hex>/
<sha256 of its bytes>.<ext>`` (atomically; two processes write the same bytes to the same
name), and the clip's ``audio_path`` points there while its ``source`` names the member
(``/data/shards-000.tar#000123.flac``, shown in rows, indexes and error messages). Hence a
member's embedding is the one the same audio gets as a file (same bytes, same key — they even
share the stored row), and a corrupt member is skipped and reported like a corrupt file. The
tar is streamed one member at a time, so memory does not grow with a shard's size; the cost is
one copy of the audio on disk (delete ``<cache dir>/data/webdataset`` to reclaim it; it is
recreated when needed). A shard's listing (members, their hashes and metadata) is remembered
beside it in ``<cache dir>/data/webdataset/shards/`` with the shard's size, mtime, ctime and inode,
so an unchanged shard is not read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harken.data.audio import SOUNDFILE_SUFFIXES
from harken.data.download import default_data_cache
from harken.data.manifest import Clip, Manifest
from harken.data.readers.base import READERS
from harken.data.readers.generic import parse_sounding
from harken.errors import ConfigError, DataError

#: Member suffixes read as a sample's audio.
AUDIO_SUFFIXES = frozenset(s.lstrip(".") for s in SOUNDFILE_SUFFIXES) | {"m4a", "opus"}
#: json keys that are not label columns (as the generic CSV's reserved columns).
RESERVED = ("start", "end", "fold", "group", "narration", "sounding", "id", "clip_id")
LISTING_FORMAT = "harken-webdataset-listing-1"
_INSTALL = "pip install 'harken[webdataset]' (or pip install webdataset)"


def is_shard_spec(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names WebDataset shards: a path or brace pattern ending in ``.tar``."""
    return str(spec).lower().endswith(".tar")


def _webdataset():
    try:
        import webdataset
    except ImportError:
        raise ConfigError(
            f"reading WebDataset .tar shards needs the webdataset package: {_INSTALL}"
        ) from None
    return webdataset


def expand_shards(spec: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The shard files of ``spec``: one ``.tar``, a brace pattern, or a folder (its ``*.tar``,
    recursively, sorted).

    Raises:
        DataError: a shard is missing, or a folder holds none (lists the first few missing).
    """
    text = os.path.expanduser(str(spec))
    if data_dir is not None and not os.path.isabs(text) and not os.path.exists(text):
        text = os.path.join(os.path.expanduser(str(data_dir)), text)
    if Path(text).is_dir():
        found = sorted(p for p in Path(text).rglob("*") if p.suffix.lower() == ".tar")
        if not found:
            raise DataError(f"{text}: no .tar shards in this folder")
        return found
    _webdataset()
    from webdataset.shardlists import expand_urls

    paths = [Path(p) for p in expand_urls(text)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"{spec}: {len(missing)} of {len(paths)} shard(s) not found: {shown}{more}; "
            "check the path or brace pattern (e.g. shards-{000..009}.tar)"
        )
    return paths


@dataclass(frozen=True)
class Sample:
    """One sample of a shard: its key, its audio member and where that member's bytes are.

    Attributes:
        key: The sample key (``000123``).
        member: The audio member's name in the tar (``000123.flac``).
        audio: The content-addressed copy of the member's bytes.
        meta: The sample's ``.json`` metadata (empty without one).
    """

    key: str
    member: str
    audio: Path
    meta: dict = field(default_factory=dict)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$HARKEN_CACHE_DIR/data/webdataset`` (``~/.cache/harken/...``)."""
    return Path(cache_dir) if cache_dir is not None else default_data_cache() / "webdataset"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _listing_path(root: Path, tar: Path) -> Path:
    digest = hashlib.sha256(str(tar.resolve()).encode()).hexdigest()
    return root / "shards" / f"{digest}.json"


def _audio_copy(root: Path, data: bytes, suffix: str) -> Path:
    """The content-addressed copy of ``data`` (written once, atomically)."""
    digest = hashlib.sha256(data).hexdigest()
    path = root / "audio" / digest[:2] / f"{digest}.{suffix}"
    if not (path.is_file() and path.stat().st_size == len(data)):
        _atomic_write(path, data)
    return path


def _cached_listing(root: Path, tar: Path) -> list[Sample] | None:
    """The remembered samples of an unchanged shard whose copies are all still there."""
    path = _listing_path(root, tar)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if record.get("format") != LISTING_FORMAT or record.get("stamp") != _stamp(tar):
        return None
    samples = [
        Sample(s["key"], s["member"], root / s["audio"], s["meta"]) for s in record["samples"]
    ]
    if not all(s.audio.is_file() for s in samples):
        return None
    return samples


def _samples(tar: Path) -> Iterator[dict]:
    """Stream the samples of one shard (webdataset's tar iterator: one member in memory)."""
    wds = _webdataset()
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    with open(tar, "rb") as f:
        members = tar_file_iterator(f, handler=wds.reraise_exception)
        yield from group_by_keys({**m, "__url__": str(tar)} for m in members)


def _parse_meta(tar: Path, key: str, data: bytes) -> dict:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{tar}#{key}.json: not valid UTF-8 JSON ({exc}); fix or remove the member"
        ) from None
    if not isinstance(meta, dict):
        raise DataError(f"{tar}#{key}.json: expected a JSON object, got {type(meta).__name__}")
    return meta


def read_shard(tar: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> list[Sample]:
    """The samples of one shard, their audio members copied into the cache (see the module
    docstring); an unchanged shard read before is not opened again.

    Raises:
        DataError: the shard is not a readable tar archive (truncated, corrupt), a sample has two
            audio members, or a ``.json`` member is malformed — naming the shard and member.
    """
    tar = Path(tar)
    root = cache_root(cache_dir)
    cached = _cached_listing(root, tar)
    if cached is not None:
        return cached
    stamp = _stamp(tar)
    samples: list[Sample] = []
    no_audio: list[str] = []
    last = "its first member"
    try:
        for raw in _samples(tar):
            key = raw["__key__"]
            last = f"sample {key!r}"
            audio = [s for s in raw if s in AUDIO_SUFFIXES]
            if len(audio) > 1:
                raise DataError(
                    f"{tar}#{key}: {len(audio)} audio members ({', '.join(audio)}); a sample "
                    "holds one audio file — split it into samples with their own keys"
                )
            if not audio:
                no_audio.append(key)
                continue
            meta = _parse_meta(tar, key, raw["json"]) if "json" in raw else {}
            copy = _audio_copy(root, raw[audio[0]], audio[0])
            samples.append(Sample(key, f"{key}.{audio[0]}", copy, meta))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"{tar}: not a readable tar archive after {last} ({exc}); it is truncated or "
            "corrupt — download or write the shard again"
        ) from exc
    except ValueError as exc:  # webdataset: a member name repeated within one sample
        raise DataError(f"{tar}: {exc}; every member of a sample needs its own suffix") from exc
    if no_audio:
        warnings.warn(
            f"{tar}: {len(no_audio)} sample(s) without an audio member skipped "
            f"(e.g. {no_audio[:3]}); audio members end in {', '.join(sorted(AUDIO_SUFFIXES))}",
            UserWarning,
            stacklevel=2,
        )
    record = {
        "format": LISTING_FORMAT,
        "shard": str(tar.resolve()),
        "stamp": stamp,
        "samples": [
            {
                "key": s.key,
                "member": s.member,
                "audio": str(s.audio.relative_to(root)),
                "meta": s.meta,
            }
            for s in samples
        ],
    }
    text = json.dumps(record, ensure_ascii=False) + "\n"
    _atomic_write(_listing_path(root, tar), text.encode("utf-8"))
    return samples


def member_address(tar: str | os.PathLike, member: str) -> str:
    """How a member is named in rows, indexes and messages: ``<absolute shard>#<member>``."""
    return f"{Path(tar).resolve()}#{member}"


def shard_clips(
    specs: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None
) -> list[Clip]:
    """Unlabelled clips (``harken embed`` / ``harken index`` inputs) of the shards of ``specs``,
    one per sample in shard order; ``clip_id`` and ``source`` are the member's address."""
    clips = []
    for spec in specs:
        for tar in expand_shards(spec):
            for s in read_shard(tar, cache_dir):
                address = member_address(tar, s.member)
                clips.append(Clip(clip_id=address, audio_path=s.audio, source=address))
    return clips


def _seconds(where: str, key: str, value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DataError(f"{where}: {key} {value!r} is not a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise DataError(f"{where}: {key} {value!r} is not a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise DataError(f"{where}: {key} {value!r} must be ≥ 0 seconds")
    return seconds


def _label_value(value) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value) and value[0]:
        return value[0]
    return None


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def sample_clip(tar: Path, sample: Sample, stem: str) -> Clip:
    """A labelled clip from a sample and its json (see the module docstring)."""
    meta = sample.meta
    where = f"{tar}#{sample.key}.json"
    start = _seconds(where, "start", meta.get("start"))
    end = _seconds(where, "end", meta.get("end"))
    if start is not None and end is not None and end <= start:
        raise DataError(f"{where}: end {end:g} s is not after start {start:g} s")
    sounding = meta.get("sounding")
    if not isinstance(sounding, bool | None):
        sounding = parse_sounding(str(sounding), where)
    labels = {
        k: v
        for k, raw in meta.items()
        if k not in RESERVED and (v := _label_value(raw)) is not None
    }
    clip_id = _text(meta.get("id", meta.get("clip_id"))) or f"{stem}/{sample.key}"
    return Clip(
        clip_id=clip_id,
        audio_path=sample.audio,
        labels=labels,
        start=start,
        end=end,
        narration=_text(meta.get("narration")),
        fold=_text(meta.get("fold")),
        group=_text(meta.get("group")),
        sounding=sounding,
        source=member_address(tar, sample.member),
    )


def _default_name(spec: str) -> str:
    stem = Path(spec.rstrip("/")).name
    stem = stem[:-4] if stem.lower().endswith(".tar") else stem
    stem = stem.split("{")[0].rstrip("-_.") or "webdataset"
    return stem


@READERS.register("webdataset")
def read_webdataset(
    data_dir: str | Path | None = None,
    *,
    spec: str | None = None,
    name: str | None = None,
    cache_dir: str | Path | None = None,
) -> Manifest:
    """Read WebDataset shards as a dataset (``webdataset:<shards>``, or a ``.tar`` spec given to
    :func:`~harken.data.readers.read_dataset`).

    Args:
        data_dir: Folder relative shard paths are taken from (default: the working folder).
        spec: A shard, a brace pattern (``shards-{000..009}.tar``) or a folder of shards.
        name: Dataset name (default: the pattern's stem before any brace, e.g. ``shards``).
        cache_dir: Where member copies and listings go (default ``<cache dir>/data/webdataset``).

    Returns:
        One clip per sample, shards in order, samples in tar order.

    Raises:
        ConfigError: no spec, or the webdataset package is missing.
        DataError: missing or corrupt shards, malformed metadata, duplicate clip ids.
    """
    if not spec:
        raise ConfigError(
            "webdataset needs its shards: webdataset:path/shards-{000..009}.tar (or a folder)"
        )
    clips: list[Clip] = []
    for tar in expand_shards(spec, data_dir):
        stem = tar.name[:-4] if tar.name.lower().endswith(".tar") else tar.stem
        clips += [sample_clip(tar, s, stem) for s in read_shard(tar, cache_dir)]
    if not clips:
        raise DataError(f"{spec}: the shards hold no audio samples")
    root = Path(data_dir) if data_dir is not None else None
    return Manifest(name or _default_name(spec), clips, root)
